"""The image-backend protocol: request/result records, the size table, the small base class.

A backend is a class with capability attributes (`backend_id`, `needs_key`, `key_env_var`), a
nested pydantic `Options` and one method to implement, `generate_one(request)`. The base class
owns everything the backends share: one-time setup, per-request error isolation, the exact
output size and one-line, secret-free error messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from stage5cli.errors import Stage5Error, UsageError
from stage5cli.secrets import scrub

if TYPE_CHECKING:
    from PIL.Image import Image

# (width, height) of the image key of each asset type.
SIZES: dict[str, tuple[int, int]] = {
    "character": (512, 768),
    "prop": (512, 512),
    "location": (1024, 576),
}

MAX_SIDE = 4096


def size_for(asset_type: str) -> tuple[int, int]:
    """The (width, height) for an asset type; UsageError for an unknown type."""
    try:
        return SIZES[asset_type]
    except KeyError:
        raise UsageError(
            f"unknown asset type {asset_type!r}; expected one of: {', '.join(SIZES)}"
        ) from None


@dataclass
class ImageRequest:
    key: str  # unique in a batch (the job id as str)
    asset_id: int
    asset_name: str
    asset_type: str  # character | prop | location
    description: str
    prompt: str  # already composed (style injected)
    negative_prompt: str
    width: int
    height: int
    seed: int
    steps: int
    guidance: float
    sampler: str
    palette: list[str]  # "#rrggbb" colours of the locked style
    style_id: str
    style_name: str
    style_sha256: str
    # what compose recorded about the prompt (tokens, limit, encoder, dropped); see prompting
    prompt_info: dict = field(default_factory=dict)


@dataclass
class ImageResult:
    key: str
    image: Image | None  # exactly width x height when ok
    error: str | None = None  # one line, no secrets
    cost_usd: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.image is not None


# ---- error messages: one line, no secrets ------------------------------------------------------

def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An exception as one short, scrubbed line: 'Type: message'."""
    if isinstance(exc, BaseException):
        msg = str(exc) if isinstance(exc, Stage5Error) else f"{type(exc).__name__}: {exc}"
    else:
        msg = exc
    msg = scrub(" ".join(msg.split()))
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


# ---- exact size ------------------------------------------------------------------------------


def fit_exact(image: Image, width: int, height: int) -> Image:
    """Scale `image` to cover width x height, then centre-crop to exactly that size."""
    from PIL import Image as PILImage

    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size == (width, height):
        return image
    w, h = image.size
    scale = max(width / w, height / h)
    new = (max(width, round(w * scale)), max(height, round(h * scale)))
    image = image.resize(new, PILImage.Resampling.LANCZOS)
    left = (new[0] - width) // 2
    top = (new[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


def validate_request(req: ImageRequest) -> None:
    if not (0 < req.width <= MAX_SIDE and 0 < req.height <= MAX_SIDE):
        raise UsageError(f"bad image size {req.width}x{req.height} (1..{MAX_SIDE} per side)")


# ---- the base class --------------------------------------------------------------------------


class ImageBackend:
    """Base of every image backend. Subclasses set the class attributes and implement
    `generate_one`; heavy state is built once in `setup()` and reused for every request."""

    backend_id: ClassVar[str] = ""
    description: ClassVar[str] = ""
    needs_key: ClassVar[bool] = False
    key_env_var: ClassVar[str | None] = None

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        model: str | None = None
        api_base: str | None = None
        timeout: float = 120.0

    def __init__(self, options: ImageBackend.Options | None = None):
        self.options = options if options is not None else self.Options()
        self._ready = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend_id} model={self.model_name()!r}>"

    def model_name(self) -> str:
        """What is recorded in job rows and PNG metadata."""
        return self.options.model or self.backend_id

    def estimate_cost(self, req: ImageRequest) -> float | None:
        """USD for one image: 0.0 for local backends, None when unknown. Never raises."""
        return 0.0

    def check(self) -> None:
        """Raise UsageError naming the fix when the backend cannot run (cheap, no loading)."""

    def setup(self) -> None:
        """Heavy one-time work (load a pipeline, open a client). Called once per instance."""

    def close(self) -> None:
        """Release what setup() acquired. The instance can be set up again afterwards."""
        self._ready = False

    def generate_one(self, req: ImageRequest) -> ImageResult:
        raise NotImplementedError

    def ensure_ready(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def text_budget(self):
        """How this backend's model reads text (images.budget.TextBudget): what `compose`
        sizes prompts for. The base: no limit."""
        from .budget import unlimited

        return unlimited()

    def batch_size(self) -> int:
        """How many same-size requests one `generate_many` call takes (1: one at a time)."""
        return 1

    def generate_many(self, reqs: list[ImageRequest]) -> list[ImageResult]:
        """Requests of one size and sampling setup in one call; the base runs them one by
        one. A backend that batches overrides this (and `batch_size`)."""
        return [self.generate_one(r) for r in reqs]

    @staticmethod
    def batch_key(req: ImageRequest) -> tuple:
        return (req.width, req.height, req.steps, req.guidance, req.sampler,
                bool(req.negative_prompt))

    def _finish(self, req: ImageRequest, result: ImageResult, seconds: float) -> ImageResult:
        if result.error is not None:
            result.image = None
            result.error = one_line(result.error)
        elif result.image is None:
            result.error = "backend returned no image"
        else:
            got = tuple(result.image.size)
            if got != (req.width, req.height) or result.image.mode != "RGB":
                result.image = fit_exact(result.image, req.width, req.height)
                if got != (req.width, req.height):
                    result.info.setdefault("provider_size", list(got))
                    result.info["resized"] = True
        result.info.setdefault("model", self.model_name())
        result.info.setdefault("backend", self.backend_id)
        result.info["seconds"] = round(seconds, 4)
        return result

    def _one(self, req: ImageRequest) -> ImageResult:
        t0 = time.perf_counter()
        try:
            validate_request(req)
            result = self.generate_one(req)
        except Exception as exc:  # isolate one request's failure
            result = ImageResult(req.key, None, error=one_line(exc))
        return self._finish(req, result, time.perf_counter() - t0)

    def generate(self, requests: Iterable[ImageRequest]) -> Iterator[ImageResult]:
        """Yield one result per request, in order. A failing request yields a result with
        `error` and the rest continue; only a problem that stops every request (the backend
        cannot start: missing model, missing extra) raises, as a Stage5Error, before the
        first result. Consecutive requests of one size and sampling setup go to
        `generate_many` in chunks of `batch_size()`; a chunk that fails as a whole is retried
        one request at a time, so one bad request never fails its neighbours."""
        self.ensure_ready()
        pending = list(requests)
        size = max(1, int(self.batch_size() or 1))
        i = 0
        while i < len(pending):
            chunk = [pending[i]]
            key = self.batch_key(pending[i])
            while (len(chunk) < size and i + len(chunk) < len(pending)
                   and self.batch_key(pending[i + len(chunk)]) == key):
                chunk.append(pending[i + len(chunk)])
            i += len(chunk)
            if len(chunk) == 1:
                yield self._one(chunk[0])
                continue
            t0 = time.perf_counter()
            try:
                for req in chunk:
                    validate_request(req)
                results = self.generate_many(chunk)
                if len(results) != len(chunk):
                    raise Stage5Error("the backend returned a short batch")
            except Exception:
                for req in chunk:
                    yield self._one(req)
                continue
            each = (time.perf_counter() - t0) / len(chunk)
            for req, result in zip(chunk, results, strict=True):
                result.info["batch"] = len(chunk)
                yield self._finish(req, result, each)
