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
- Keys come only from litellm's environment variables. Error text is scrubbed of anything
  key-like before it is logged, stored or raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cache
from string import Template
from typing import Any, TypeVar

import sqlite_utils

from stage5cli.db import atomic, dumps, now
from stage5cli.errors import Stage5Error, UsageError
from stage5cli.extract.base import LLMOptions
from stage5cli.secrets import scrub

T = TypeVar("T")
RESPONSE_FORMAT = {"type": "json_object"}
PLACEHOLDER_KEY = "stage5-no-key"  # sent to a keyless local server (api_base) only
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


def _litellm():
    from stage5cli.litellm_env import import_litellm

    return import_litellm()


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
        var = " or ".join(key_variables(settings.model))
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


def parse_json_object(text: str) -> dict:
    """The JSON object in an answer; tolerates ``` fences and text around the object."""
    raw = (text or "").strip()
    fence = re.match(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", raw, re.DOTALL)
    if fence:
        raw = fence.group(1).strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as first:
        start, end = raw.find("{"), raw.rfind("}")
        if start < 0 or end <= start:
            raise ValueError(f"not valid JSON ({first.msg} at line {first.lineno} column {first.colno})") from None
        try:
            value = json.loads(raw[start : end + 1])
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
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
        self.sem = asyncio.Semaphore(settings.concurrency)
        self.api_key: str | None = None
        self.fatal: Stage5Error | None = None  # set once a call shows that every call will fail

    def preflight(self) -> None:
        """Refuse at once an unknown provider, or a hosted model whose key variable is unset."""
        litellm = _litellm()
        try:
            litellm.get_llm_provider(self.s.model)
        except Exception as e:
            fatal = _fatal(e, self.s, False)
            raise fatal or UsageError(f"unknown model {self.s.model!r}: {_provider_message(e)}") from None
        try:
            env = litellm.validate_environment(self.s.model)
        except Exception:
            return
        missing = [k for k in env.get("missing_keys") or [] if k.endswith("_API_KEY")]
        if env.get("keys_in_environment") or not missing:
            return
        if self.s.api_base:
            self.api_key = PLACEHOLDER_KEY  # a local server usually needs none; a 401 names the variable
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
                [key, self.s.model, purpose, dumps(request),
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
