"""The remote image-API backend, through `litellm.image_generation`.

- Model names are litellm's: `openai/gpt-image-1`, `openai/<name>` with `api_base` for any
  OpenAI-compatible server, `vertex_ai/...`, `azure/...` and so on.
- Keys come only from the environment: the provider's usual variable for its own host; a
  server given with api_base gets $STAGE5_API_KEY or the variable named by api_key_env, else
  a dummy key (the OpenAI client insists on one), never the provider's default variable.
- Sizes: known providers only accept a few sizes, so the closest one (aspect ratio first) is
  requested and the answer is scaled and centre-cropped to the exact size; `info` records both.
- Retries: on the OpenAI-compatible route the OpenAI SDK inside litellm already retries
  429/5xx/timeouts twice with backoff (litellm 1.106.2 pins max_retries=2 there), so this
  backend adds no retries of its own there by default; on other routes it retries twice with
  exponential backoff. `retries=N` forces N extra attempts everywhere. Every call has a timeout.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import time
import warnings
from typing import Literal

from pydantic import Field, field_validator

from stage5cli.errors import UsageError
from stage5cli.images.base import ImageBackend, ImageRequest, ImageResult, one_line
from stage5cli.secrets import api_key_for, scrub

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")
MAX_DOWNLOAD = 64 * 1024 * 1024
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}

# Sizes the big providers accept (the model's last path segment starts with the key).
PROVIDER_SIZES: dict[str, list[tuple[int, int]]] = {
    "gpt-image": [(1024, 1024), (1536, 1024), (1024, 1536)],
    "chatgpt-image": [(1024, 1024), (1536, 1024), (1024, 1536)],
    "dall-e-3": [(1024, 1024), (1792, 1024), (1024, 1792)],
    "dall-e-2": [(256, 256), (512, 512), (1024, 1024)],
}


def parse_size(text: str) -> tuple[int, int]:
    m = _SIZE.match(text or "")
    if not m:
        raise ValueError(f"size must look like 1024x1024, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def choose_size(width: int, height: int, allowed: list[tuple[int, int]]) -> tuple[int, int]:
    """The allowed size closest in aspect ratio; among equals, the smallest that covers the
    request (so the crop only ever scales down), else the largest."""
    target = math.log(width / height)

    def rank(s: tuple[int, int]):
        covers = s[0] >= width and s[1] >= height
        return (
            round(abs(math.log(s[0] / s[1]) - target), 3),
            not covers,
            s[0] * s[1] * (1 if covers else -1),
        )

    return min(allowed, key=rank)


def known_sizes(model: str) -> list[tuple[int, int]] | None:
    last = model.rsplit("/", 1)[-1].lower()
    for prefix, sizes in PROVIDER_SIZES.items():
        if last.startswith(prefix):
            return sizes
    return None


def _litellm():
    from stage5cli.litellm_env import import_litellm

    litellm = import_litellm()
    # A malformed answer makes litellm's pydantic models warn on stderr (several lines, per
    # field); the job error already says what was wrong, in one line.
    warnings.filterwarnings("ignore", message=r"(?s).*Pydantic serializer warnings",
                            category=UserWarning)
    return litellm


class NoImage(Exception):
    """The provider answered, but not with an image."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    x: BaseException | None = exc
    while x is not None and len(out) < 12 and x not in out:
        out.append(x)
        x = x.__cause__ or x.__context__
    return out


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000.0
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except (TypeError, ValueError):
        return None
    return None


def classify(exc: BaseException) -> tuple[str, int | None, float | None]:
    """('timeout' | 'connection' | 'status' | 'unreadable' | 'other', status, retry_after)."""
    import httpx

    chain = _chain(exc)
    names = {type(x).__name__ for x in chain}
    if names & {
        "Timeout",
        "APITimeoutError",
        "ReadTimeout",
        "ConnectTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "TimeoutException",
        "TimeoutError",
    }:
        return "timeout", None, None
    # a real HTTP answer: the SDK's / httpx's exception carries the provider's response
    for x in chain:
        if type(x).__module__.split(".")[0] in ("openai", "httpx"):
            resp = getattr(x, "response", None)
            if isinstance(resp, httpx.Response):
                return "status", resp.status_code, _retry_after(resp.headers)
    if names & {
        "APIConnectionError",
        "ConnectError",
        "RemoteProtocolError",
        "ReadError",
        "ConnectionError",
        "ConnectionResetError",
        "ServiceUnavailableError",
    }:
        return "connection", None, None
    root = chain[-1]
    if len(chain) > 1 and isinstance(root, (AttributeError, ValueError, TypeError, KeyError)):
        return "unreadable", None, None
    status = getattr(exc, "status_code", None)
    return ("status", status, None) if isinstance(status, int) else ("other", None, None)


_LITELLM_PREFIX = re.compile(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(\w+Exception\s*-\s*)?")


def _message(exc: BaseException) -> str:
    """The provider's message in one line: litellm's prefix off, and never a traceback that
    litellm pastes into some messages ("Invalid response object Traceback ...")."""
    text = str(exc).split("Traceback (most recent call last)", 1)[0]
    return _LITELLM_PREFIX.sub("", " ".join(text.split()), count=1).rstrip(" :") or \
        exc.__class__.__name__


class ApiBackend(ImageBackend):
    backend_id = "api"
    description = "remote image APIs through litellm (OpenAI-compatible and other providers)"
    needs_key = True
    key_env_var = "OPENAI_API_KEY"  # the default provider's; others use litellm's variables

    class Options(ImageBackend.Options):
        size: str | None = None  # "WxH" to request from the provider (default: per model)
        quality: str | None = None
        response_format: Literal["b64_json", "url"] | None = None
        retries: int | None = Field(default=None, ge=0, le=10)  # None: see module docs
        backoff: float = Field(default=1.0, ge=0.0, le=60.0)  # seconds, doubled per retry
        api_key_env: str | None = None  # --api-key-env: the variable whose key is sent

        @field_validator("size")
        @classmethod
        def _size(cls, v: str | None) -> str | None:
            if v is None:
                return v
            w, h = parse_size(v)
            return f"{w}x{h}"

    def __init__(self, options: ApiBackend.Options | None = None):
        super().__init__(options)
        self._http = None
        self._route: tuple[str, str] | None = None  # (model without provider, provider)
        self._api_key: str | None = None

    def model_name(self) -> str:
        return self.options.model or "(no model)"

    def text_budget(self):
        """The provider's documented prompt limit in characters (dall-e-3 4000, dall-e-2 1000,
        gpt-image 32000); any other model is sized for a 77-token CLIP encoder."""
        from .budget import api_budget

        return api_budget(self.options.model or "")

    # -- checks -----------------------------------------------------------------------------

    def _provider(self) -> tuple[str, str]:
        if self._route is None:
            litellm = _litellm()
            model = self.options.model or ""
            try:
                name, provider, _key, _base = litellm.get_llm_provider(
                    model=model, api_base=self.options.api_base
                )
            except Exception:  # litellm raises its own BadRequestError
                raise UsageError(
                    f"unknown image model {model!r}: prefix it with its provider, e.g. "
                    "openai/gpt-image-1, or openai/<name> with --api-base for a local server"
                ) from None
            self._route = (name, provider)
        return self._route

    def check(self) -> None:
        if not self.options.model:
            raise UsageError(
                "the api backend needs a model: pass --model, e.g. openai/gpt-image-1 "
                "(or openai/<name> with --api-base URL for an OpenAI-compatible server)"
            )
        self._provider()
        litellm = _litellm()
        try:
            env = litellm.validate_environment(
                model=self.options.model, api_base=self.options.api_base
            )
        except Exception:  # cannot tell; the call itself will say
            env = {"keys_in_environment": True, "missing_keys": []}
        # a key only where the user named one for it (never OPENAI_API_KEY to any --api-base)
        self._api_key = api_key_for(self.options.api_base, self.options.api_key_env)
        missing = [k for k in env.get("missing_keys") or [] if k]
        if missing and not env.get("keys_in_environment") and self._api_key is None:
            raise UsageError(
                f"the api backend needs {' and '.join(missing)} in the environment for "
                f"{self.options.model} (or --api-base URL for a keyless local server)")

    def setup(self) -> None:
        import httpx

        self.check()
        self._http = httpx.Client(timeout=self.options.timeout, follow_redirects=True)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        super().close()

    # -- sizes and cost ---------------------------------------------------------------------

    def provider_size(self, req: ImageRequest) -> tuple[int, int]:
        if self.options.size:
            return parse_size(self.options.size)
        sizes = known_sizes(self.options.model or "")
        return choose_size(req.width, req.height, sizes) if sizes else (req.width, req.height)

    def _cost(self, size: tuple[int, int]) -> float | None:
        try:
            _litellm()
            from litellm.cost_calculator import default_image_cost_calculator

            name, provider = self._provider()
            cost = default_image_cost_calculator(
                model=name,
                custom_llm_provider=provider,
                quality=self.options.quality,
                n=1,
                size=f"{size[0]}x{size[1]}",
            )
            return float(cost) if cost is not None and math.isfinite(float(cost)) else None
        except Exception:  # unknown price is None, never an error
            return None

    def estimate_cost(self, req: ImageRequest) -> float | None:
        if not self.options.model:
            return None
        try:
            return self._cost(self.provider_size(req))
        except Exception:
            return None

    # -- generation -------------------------------------------------------------------------

    def _own_retries(self) -> int:
        if self.options.retries is not None:
            return self.options.retries
        litellm = _litellm()
        _, provider = self._provider()
        sdk_retries = provider in ("openai", "litellm_proxy") or provider in getattr(
            litellm, "openai_compatible_providers", []
        )
        return 0 if sdk_retries else 2

    def _sleep(self, attempt: int, retry_after: float | None) -> None:
        delay = self.options.backoff * (2**attempt)
        if retry_after is not None and 0 <= retry_after <= 60:
            delay = retry_after
        time.sleep(min(delay, 30.0))

    def generate_one(self, req: ImageRequest) -> ImageResult:
        litellm = _litellm()
        pw, ph = self.provider_size(req)
        info: dict = {"requested_size": [req.width, req.height], "provider_size": [pw, ph]}
        kwargs: dict = {
            "model": self.options.model,
            "prompt": req.prompt,
            "n": 1,
            "size": f"{pw}x{ph}",
            "timeout": self.options.timeout,
            "drop_params": True,  # e.g. response_format where the provider has none
        }
        if self.options.api_base:
            kwargs["api_base"] = self.options.api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        if self.options.quality:
            kwargs["quality"] = self.options.quality
        if self.options.response_format:
            kwargs["response_format"] = self.options.response_format
        attempts = 1 + self._own_retries()
        for attempt in range(attempts):
            info["attempts"] = attempt + 1
            try:
                response = litellm.image_generation(**kwargs)
                image, source = self._decode(response)
            except NoImage as exc:
                return ImageResult(
                    req.key, None, error=scrub(f"provider returned no image ({one_line(str(exc))})"),
                    info=info)
            except Exception as exc:  # classify, maybe retry
                kind, status, retry_after = classify(exc)
                retry = kind in ("timeout", "connection") or (
                    kind == "status" and status in RETRYABLE_STATUS
                )
                if retry and attempt + 1 < attempts:
                    self._sleep(attempt, retry_after)
                    continue
                return ImageResult(
                    req.key, None, error=scrub(self._describe(exc, kind, status)), info=info
                )
            break
        info["source"] = source
        info["provider_image_size"] = list(image.size)
        if tuple(image.size) != (req.width, req.height):
            info["resized"] = True
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        if not isinstance(cost, (int, float)) or not math.isfinite(cost):
            cost = self._cost((pw, ph))
        return ImageResult(req.key, image, cost_usd=cost, info=info)

    def _describe(self, exc: BaseException, kind: str, status: int | None) -> str:
        model = self.options.model
        if kind == "timeout":
            return f"{model}: request timed out after {self.options.timeout:g}s"
        if kind == "connection":
            where = self.options.api_base or "the provider"
            return f"{model}: cannot connect to {where}: {one_line(_message(exc), 160)}"
        if kind == "unreadable":
            return f"provider returned no image (unreadable answer: {one_line(_message(exc), 120)})"
        if kind == "status" and status is not None:
            hint = ""
            if status in (401, 403):
                hint = (f" (check the API key in ${self.options.api_key_env})"
                        if self.options.api_key_env else
                        " (set STAGE5_API_KEY, or name a variable with --api-key-env VAR)"
                        if self.options.api_base else
                        f" (check the API key in the environment, e.g. {self.key_env_var})")
            return f"{model}: provider error {status}: {one_line(_message(exc), 200)}{hint}"
        return f"{model}: {one_line(exc, 220)}"

    # -- decoding ---------------------------------------------------------------------------

    def _decode(self, response):
        data = getattr(response, "data", None)
        if data is None and isinstance(response, dict):
            data = response.get("data")
        if not data:
            raise NoImage("empty data")
        item = data[0]
        get = item.get if isinstance(item, dict) else lambda k: getattr(item, k, None)
        b64, url = get("b64_json"), get("url")
        if b64:
            try:
                raw = base64.b64decode(b64, validate=False)
            except (binascii.Error, ValueError, TypeError) as exc:
                raise NoImage(f"bad base64: {exc}") from None
            return _open_image(raw, "b64_json"), "b64_json"
        if url:
            if url.startswith("data:"):
                try:
                    raw = base64.b64decode(url.split(",", 1)[1])
                except (IndexError, binascii.Error, ValueError) as exc:
                    raise NoImage(f"bad data URL: {exc}") from None
                return _open_image(raw, "data URL"), "data_url"
            raw, ctype = self._fetch(url)
            return _open_image(raw, f"URL answered {ctype or 'no content type'}"), "url"
        raise NoImage("neither b64_json nor url in the answer")

    def _fetch(self, url: str) -> tuple[bytes, str]:
        """GET an image URL with the same timeout; transient failures retried (the image is
        already paid for, so only the download is repeated, never the generation)."""
        import httpx

        client = self._http or httpx.Client(timeout=self.options.timeout, follow_redirects=True)
        tries = 1 + max(2, self._own_retries())
        last = ""
        for attempt in range(tries):
            try:
                with client.stream("GET", url) as resp:
                    if resp.status_code in RETRYABLE_STATUS:
                        raise _Retryable(f"HTTP {resp.status_code}", _retry_after(resp.headers))
                    if resp.status_code >= 400:
                        raise NoImage(f"image URL answered HTTP {resp.status_code}")
                    chunks, size = [], 0
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD:
                            raise NoImage(f"image URL is larger than {MAX_DOWNLOAD // 2**20} MiB")
                        chunks.append(chunk)
                    return b"".join(chunks), resp.headers.get("content-type", "")
            except _Retryable as exc:
                last, retry_after = str(exc), exc.retry_after
            except httpx.TimeoutException:
                last, retry_after = f"timed out after {self.options.timeout:g}s", None
            except httpx.TransportError as exc:
                last, retry_after = one_line(exc, 120), None
            if attempt + 1 < tries:
                self._sleep(attempt, retry_after)
        raise NoImage(f"image URL could not be fetched: {last}")


def _open_image(raw: bytes, what: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        head = raw[:24].decode("latin-1", "replace").replace("\n", " ")
        raise NoImage(f"{what}, {len(raw)} bytes, not an image: {head!r}") from exc
