"""One cached, logged, retried litellm call, and JSON answers validated with one repair.

Used by the extractor's two passes, by `describe` and by `conflicts --suggest`.

- Every real HTTP attempt is a row in `llm_calls` (request = messages + parameters, never a key;
  response; error; tokens; cost from litellm's local price map, NULL when unknown; latency).
- The cache key is sha256(model, prompt version, exact messages, response_format). A row with a
  response that still validates serves the call again without a request.
- Retries are our own loop, not litellm's `num_retries`: litellm does retry 429/5xx/timeouts/
  dropped connections against an OpenAI-compatible api_base (checked against the loopback
  server), but it retries 5xx, timeouts and connection errors at once with no backoff, retries
  a 5xx caused by a missing key, and sets the global `litellm.num_retries = None` while doing
  it. Here: 429/5xx/timeouts/connection errors only, exponential backoff with jitter, honouring
  Retry-After (capped), at most `max_retries` retries, the semaphore released while waiting.
- Keys: a server given with api_base gets $STAGE5_API_KEY or the variable named by api_key_env,
  never the provider's default variable (secrets.api_key_for). Error text is scrubbed of anything
  key-like before it is logged, stored or raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cache
from string import Template
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import sqlite_utils

from stage5cli.db import atomic, dumps, now
from stage5cli.errors import Stage5Error, UsageError
from stage5cli.extract.base import LLMOptions, auto_concurrency
from stage5cli.secrets import KEY_ENV, NO_KEY, api_key_for, scrub

T = TypeVar("T")
RESPONSE_FORMAT = {"type": "json_object"}
PLACEHOLDER_KEY = NO_KEY  # sent to a keyless local server (api_base) only
MAX_RETRY_AFTER = 30.0
MAX_BACKOFF = 20.0


# ---- prompts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str

    def messages(self, **values: object) -> list[dict[str, str]]:
        vals = {k: str(v) for k, v in values.items()}
        out = []
        if self.system:
            out.append({"role": "system", "content": Template(self.system).substitute(vals)})
        out.append({"role": "user", "content": Template(self.user).substitute(vals)})
        return out


def _prompt_dir():
    import importlib.resources as resources

    try:
        return resources.files("stage5cli.prompts")
    except (ModuleNotFoundError, TypeError):  # not installed as a package: the repository copy
        from pathlib import Path

        return Path(__file__).resolve().parents[2] / "prompts"


@cache
def load_prompt(name: str) -> Prompt:
    """prompts/<name>.txt: a `version:` line, `#` comments, then `[system]` and `[user]` parts."""
    text = (_prompt_dir() / f"{name}.txt").read_text(encoding="utf-8")
    version, parts, current = "", {"system": [], "user": []}, None
    for line in text.splitlines():
        if current is None:
            if line.startswith("version:"):
                version = line.split(":", 1)[1].strip()
                continue
            if not line.strip() or line.startswith("#"):
                continue
        if line.strip() in ("[system]", "[user]"):
            current = line.strip()[1:-1]
            continue
        if current is None:
            raise ValueError(f"prompts/{name}.txt: text before [system]/[user]: {line!r}")
        parts[current].append(line)
    if not version or not parts["user"]:
        raise ValueError(f"prompts/{name}.txt needs a version line and a [user] part")
    return Prompt(name, version, "\n".join(parts["system"]).strip(), "\n".join(parts["user"]).strip())


# ---- secrets ---------------------------------------------------------------------------------

def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _provider_message(e: BaseException) -> str:
    msg = str(getattr(e, "message", "") or e) or type(e).__name__
    msg = msg.split("LiteLLM Retried:")[0]
    for _ in range(3):
        msg = re.sub(r"^\s*(?:litellm\.)?\w+(?:Error|Exception)?:\s*", "", msg)
    msg = re.sub(r"^\s*\w+Exception\s+-\s+", "", msg)
    return one_line(msg) or type(e).__name__


# ---- errors ----------------------------------------------------------------------------------


class LLMItemError(Exception):
    """One request (a chunk, an asset) failed for good; the others carry on."""


_import_thread: threading.Thread | None = None


# What litellm imports lazily on the first call to an OpenAI-compatible endpoint (the openai
# SDK's resource modules, its service logger): about as long again as `import litellm`.
_FIRST_CALL_MODULES = ("litellm.llms.openai.openai", "litellm._service_logger",
                       "litellm.proxy._types")


def _warm_openai_client() -> None:
    import openai

    client = openai.AsyncOpenAI(api_key=PLACEHOLDER_KEY, base_url="http://127.0.0.1:9/v1")
    _ = client.chat.completions  # loads the SDK's resource and type modules; sends nothing


def start_import(model: str | None = None, api_base: str | None = None) -> None:
    """Start importing litellm in a background thread (it takes seconds), so that a command
    that knows it will call a model overlaps it with reading and chunking the script. For an
    OpenAI-compatible model (openai/..., or any model at an api_base) the modules litellm
    would import on the first call are loaded too.

    A no-op when litellm is loaded or the import has started. `_litellm()` joins the thread
    before its own import, so no code ever sees a half-imported litellm; a failed background
    import is simply repeated (and raised) there.
    """
    global _import_thread
    if "litellm" in sys.modules or _import_thread is not None:
        return
    openai_like = bool(api_base) or (model or "").startswith("openai/")

    def work() -> None:
        import importlib

        try:
            from stage5cli.litellm_env import import_litellm

            import_litellm()
        except BaseException:  # noqa: BLE001 - the foreground import raises it again
            return
        if not openai_like:
            return
        try:  # best effort: the first call imports whatever is missing
            for name in _FIRST_CALL_MODULES:
                importlib.import_module(name)
            _warm_openai_client()
        except Exception:  # noqa: BLE001
            pass

    thread = threading.Thread(target=work, name="stage5-import-litellm", daemon=True)
    _import_thread = thread
    thread.start()


def join_import() -> None:
    """Wait for a background import started by start_import() (no-op otherwise)."""
    thread = _import_thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()


@cache
def _freeze_at_exit() -> None:
    """Once litellm is loaded: at interpreter exit, move every object to gc's permanent
    generation first, so the final collections do not walk litellm's and the openai SDK's tens
    of thousands of objects (seconds of a short command's wall time, to free memory the
    process is handing back anyway). atexit runs at real exit only (not per CliRunner call)."""
    import atexit
    import gc

    atexit.register(gc.freeze)


def _litellm():
    join_import()
    from stage5cli.litellm_env import import_litellm

    litellm = import_litellm()
    _freeze_at_exit()
    return litellm


def key_variables(model: str) -> list[str]:
    """The environment variables litellm reads the key of `model` from (best effort)."""
    litellm = _litellm()
    try:
        missing = litellm.validate_environment(model).get("missing_keys") or []
    except Exception:
        missing = []
    names = [k for k in missing if k.endswith("_API_KEY")]
    if names:
        return names
    try:
        provider = litellm.get_llm_provider(model)[1]
    except Exception:
        return ["the provider's API key variable"]
    return [f"{provider.upper()}_API_KEY"]


def _is_retryable(e: BaseException) -> bool:
    litellm = _litellm()
    ex = litellm.exceptions
    if isinstance(e, asyncio.TimeoutError | ex.Timeout | ex.APIConnectionError | ex.RateLimitError):
        return True
    if isinstance(e, ex.InternalServerError | ex.ServiceUnavailableError | ex.BadGatewayError):
        return "missing credentials" not in str(e).lower()
    status = getattr(e, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _fatal(e: BaseException, settings: LLMOptions, used_placeholder: bool) -> Stage5Error | None:
    """A Stage5Error when `e` means every call will fail the same way, else None."""
    litellm = _litellm()
    ex = litellm.exceptions
    msg = _provider_message(e)
    text = str(e).lower()
    if isinstance(e, ex.AuthenticationError | ex.PermissionDeniedError) or "missing credentials" in text:
        var = (settings.api_key_env if settings.api_key_env
               else f"{KEY_ENV} (or name a variable with --api-key-env VAR)"
               if settings.api_base else " or ".join(key_variables(settings.model)))
        where = f"the server at {settings.api_base}" if settings.api_base else settings.model
        if used_placeholder or "missing credentials" in text:
            return UsageError(f"{where} needs an API key: set {var} ({msg})")
        return Stage5Error(f"{where} rejected the API key in {var}: {msg}")
    if isinstance(e, ex.NotFoundError):
        return Stage5Error(f"model {settings.model} not found: {msg}")
    if isinstance(e, ex.ContextWindowExceededError | ex.ContentPolicyViolationError):
        return None
    if isinstance(e, ex.BadRequestError):
        if "provider not provided" in text or "llm provider" in text:
            return UsageError(f"unknown model {settings.model!r} (use a provider prefix such as "
                              f"openai/, anthropic/, ollama/): {msg}")
        return Stage5Error(f"{settings.model} rejected the request: {msg}")
    return None


def _retry_after(e: BaseException) -> float | None:
    for holder in (getattr(e, "response", None), e):
        headers = getattr(holder, "headers", None) or getattr(holder, "litellm_response_headers", None)
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                return max(0.0, min(float(value), MAX_RETRY_AFTER))
        except (TypeError, ValueError, AttributeError):
            continue
    return None


# ---- the caller ------------------------------------------------------------------------------


def cache_key(model: str, version: str, messages: list[dict], response_format: dict | None) -> str:
    payload = dumps({"model": model, "version": version, "messages": messages,
                     "response_format": response_format})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class CallStats:
    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: bool = False
    by_purpose: dict[str, int] = field(default_factory=dict)

    @property
    def cost(self) -> float | None:
        return None if self.cost_unknown else round(self.cost_usd, 6)


_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)
_MAX_STARTS = 50  # "{" positions tried when the object is embedded in prose


def parse_json_object(text: str) -> dict:
    """The JSON object in an answer: the whole answer, else the first ``` fenced block that
    holds one (prose before and after it allowed), else the first object embedded in prose
    (braces in the prose do not matter: each "{" is tried as the start of an object)."""
    raw = (text or "").strip()
    decoder = json.JSONDecoder()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        first = e
        value = None
    if value is None or not isinstance(value, dict):
        candidates = [m.group(1).strip() for m in _FENCE.finditer(raw)] + [raw]
        for candidate in candidates:
            found = None
            for n, start in enumerate(m.start() for m in re.finditer(r"\{", candidate)):
                if n >= _MAX_STARTS:
                    break
                try:
                    obj, _ = decoder.raw_decode(candidate, start)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    found = obj
                    break
            if found is not None:
                value = found
                break
        if value is None:
            raise ValueError(f"not valid JSON ({first.msg} at line {first.lineno} column {first.colno})")
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def validation_message(e: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        parts = []
        for err in e.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
            parts.append(f"{loc}: {err.get('msg', '')}")
        more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
        return "schema error: " + "; ".join(parts) + more
    return str(e)


class Caller:
    """Concurrent, cached, logged completions for one run (one semaphore, one set of counters)."""

    def __init__(self, db: sqlite_utils.Database, settings: LLMOptions):
        settings.check()
        self.db = db
        self.s = settings
        self.first_backoff = settings.backoff()  # seconds; doubles per retry
        self.stats = CallStats()
        self.sem = asyncio.Semaphore(settings.concurrency or auto_concurrency(1 << 30))
        self.concurrency_used: list[int] = []  # per pass (size_for)
        self.api_key: str | None = None
        self.fatal: Stage5Error | None = None  # set once a call shows that every call will fail

    def size_for(self, requests: int) -> int:
        """Before a pass of `requests` concurrent requests (none in flight): with concurrency
        None, allow min(32, requests) at once; a given --concurrency is kept."""
        n = self.s.concurrency or auto_concurrency(requests)
        if self.s.concurrency is None:
            self.sem = asyncio.Semaphore(n)
        self.concurrency_used.append(n)
        return n

    def preflight(self) -> None:
        """Refuse at once an unknown provider, or a hosted model whose key variable is unset."""
        litellm = _litellm()
        try:
            litellm.get_llm_provider(self.s.model)
        except Exception as e:
            fatal = _fatal(e, self.s, False)
            raise fatal or UsageError(f"unknown model {self.s.model!r}: {_provider_message(e)}") from None
        # a key only where the user named one for it (never OPENAI_API_KEY to any --api-base)
        self.api_key = api_key_for(self.s.api_base, self.s.api_key_env)
        if self.api_key is not None:
            return
        try:
            env = litellm.validate_environment(self.s.model)
        except Exception:
            return
        missing = [k for k in env.get("missing_keys") or [] if k.endswith("_API_KEY")]
        if env.get("keys_in_environment") or not missing:
            return
        raise UsageError(f"no API key for {self.s.model}: set {' or '.join(missing)}")

    # -- cache --
    def _cached(self, key: str) -> str | None:
        row = self.db.execute(
            "SELECT response FROM llm_calls WHERE cache_key = ? AND response IS NOT NULL "
            "ORDER BY id DESC LIMIT 1",
            [key],
        ).fetchone()
        return row[0] if row else None

    def _log(self, *, key: str, purpose: str, version: str, messages: list[dict],
             response: str | None, error: str | None, usage: tuple[int | None, int | None],
             cost: float | None, latency_ms: int) -> None:
        request = {"messages": messages, "response_format": RESPONSE_FORMAT,
                   "prompt_version": version, "timeout": self.s.timeout}
        with atomic(self.db):
            self.db.execute(
                "INSERT INTO llm_calls (cache_key, model, purpose, request, response, error, "
                "input_tokens, output_tokens, cost_usd, latency_ms, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, self.s.model, purpose, scrub(dumps(request)),
                 scrub(response) if response is not None else None,
                 scrub(error) if error else None, usage[0], usage[1], cost, latency_ms, now()],
            )

    # -- one request with retries --
    async def request(self, messages: list[dict], *, purpose: str, version: str,
                      check: Callable[[str], str | None] | None = None) -> str:
        """The answer text of one live request (retried); logs every attempt."""
        litellm = _litellm()
        key = cache_key(self.s.model, version, messages, RESPONSE_FORMAT)
        kwargs: dict[str, Any] = {
            "model": self.s.model, "messages": messages, "response_format": RESPONSE_FORMAT,
            "timeout": self.s.timeout, "num_retries": 0, "max_retries": 0, "drop_params": True,
        }
        if self.s.api_base:
            kwargs["api_base"] = self.s.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        attempt = 0
        while True:
            if self.fatal is not None:
                raise self.fatal
            async with self.sem:
                if self.fatal is not None:
                    raise self.fatal
                if self.s.gate is not None:
                    await _acquire(self.s.gate)
                self.stats.requests += 1
                self.stats.by_purpose[purpose] = self.stats.by_purpose.get(purpose, 0) + 1
                t0 = time.monotonic()
                try:
                    resp = await asyncio.wait_for(litellm.acompletion(**kwargs),
                                                  timeout=self.s.timeout * 1.5 + 5)
                    error: BaseException | None = None
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # classified below
                    error = e
                finally:
                    if self.s.gate is not None:
                        self.s.gate.release()
                latency = int((time.monotonic() - t0) * 1000)
            if error is None:
                return self._record_success(resp, key=key, purpose=purpose, version=version,
                                            messages=messages, latency=latency, check=check)
            if isinstance(error, asyncio.TimeoutError):
                message = f"timed out after {self.s.timeout:g} s"
            else:
                message = _provider_message(error)
            self._log(key=key, purpose=purpose, version=version, messages=messages, response=None,
                      error=f"{type(error).__name__}: {message}", usage=(None, None), cost=None,
                      latency_ms=latency)
            fatal = _fatal(error, self.s, self.api_key == PLACEHOLDER_KEY)
            if fatal is not None:
                self.fatal = self.fatal or fatal
                raise self.fatal
            if not _is_retryable(error) or attempt >= self.s.max_retries:
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise LLMItemError(f"{message}{tries}")
            delay = _retry_after(error)
            if delay is None:
                delay = min(MAX_BACKOFF, self.first_backoff * 2**attempt)
                delay *= 0.75 + random.random() / 2
            attempt += 1
            await asyncio.sleep(delay)

    def _record_success(self, resp: Any, *, key: str, purpose: str, version: str,
                        messages: list[dict], latency: int,
                        check: Callable[[str], str | None] | None) -> str:
        litellm = _litellm()
        try:
            text = resp.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            text = ""
        usage = getattr(resp, "usage", None)
        tin = getattr(usage, "prompt_tokens", None)
        tout = getattr(usage, "completion_tokens", None)
        cost: float | None
        try:
            cost = float(litellm.completion_cost(completion_response=resp))
        except Exception:
            try:
                p, c = litellm.cost_per_token(model=self.s.model, prompt_tokens=tin or 0,
                                              completion_tokens=tout or 0)
                cost = float(p + c)
            except Exception:
                cost = None
        self.stats.input_tokens += tin or 0
        self.stats.output_tokens += tout or 0
        if cost is None:
            self.stats.cost_unknown = True
        else:
            self.stats.cost_usd += cost
        error = check(text) if check else None
        self._log(key=key, purpose=purpose, version=version, messages=messages, response=text,
                  error=f"invalid answer: {error}" if error else None, usage=(tin, tout),
                  cost=cost, latency_ms=latency)
        return text

    # -- a validated JSON answer, with one repair --
    async def complete_json(self, messages: list[dict], *, purpose: str, version: str,
                            parse: Callable[[dict], T]) -> T:
        """`parse(json_object)` of the answer; one repair request quoting the error, then fail.

        `parse` raises ValueError (pydantic's ValidationError is one) for an unusable answer.
        From the cache: a valid answer, or an invalid one whose repair answer is cached and valid.
        """

        def attempt(text: str) -> tuple[T | None, str | None]:
            try:
                return parse(parse_json_object(text)), None
            except ValueError as e:
                return None, validation_message(e)

        def check(text: str) -> str | None:
            return attempt(text)[1]

        repair = load_prompt("repair")
        repair_version = f"{version}+{repair.version}"

        def repair_messages(bad: str, error: str) -> list[dict]:
            return [*messages, {"role": "assistant", "content": bad[:8000]},
                    *repair.messages(error=error)]

        if self.s.use_cache:
            cached = self._cached(cache_key(self.s.model, version, messages, RESPONSE_FORMAT))
            if cached is not None:
                value, error = attempt(cached)
                if error is None:
                    self.stats.cache_hits += 1
                    return value  # type: ignore[return-value]
                fixed = self._cached(cache_key(self.s.model, repair_version,
                                               repair_messages(cached, error), RESPONSE_FORMAT))
                if fixed is not None:
                    value, error2 = attempt(fixed)
                    if error2 is None:
                        self.stats.cache_hits += 2
                        return value  # type: ignore[return-value]

        text = await self.request(messages, purpose=purpose, version=version, check=check)
        value, error = attempt(text)
        if error is None:
            return value  # type: ignore[return-value]
        text2 = await self.request(repair_messages(text, error), purpose=f"{purpose}-repair",
                                   version=repair_version, check=check)
        value, error2 = attempt(text2)
        if error2 is None:
            return value  # type: ignore[return-value]
        raise LLMItemError(f"invalid answer, still invalid after one repair request ({error2})")


async def _acquire(gate: Any) -> None:
    """Acquire a blocking cross-process gate without blocking the loop; a cancellation while
    waiting never leaves the gate taken (each wait is short and its outcome is settled)."""
    while True:
        task = asyncio.ensure_future(asyncio.to_thread(gate.acquire, True, 0.2))
        try:
            got = await asyncio.shield(task)
        except asyncio.CancelledError:
            if await task:
                gate.release()
            raise
        if got:
            return


async def _shutdown_litellm() -> None:
    """Let litellm's background logging finish and close its HTTP clients before the loop ends
    (else the next event loop warns about carried-over tasks and unclosed transports)."""
    litellm = _litellm()
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout=2.0)
        await GLOBAL_LOGGING_WORKER.stop()
    except Exception:
        pass
    try:
        await litellm.close_litellm_async_clients()
    except Exception:
        pass


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro), then close litellm's cached HTTP clients (bound to that loop)."""

    async def main() -> T:
        try:
            return await coro
        finally:
            if "litellm" in sys.modules:
                await _shutdown_litellm()

    return asyncio.run(main())
