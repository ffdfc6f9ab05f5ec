"""Image backends, registered in one place.

    backend = get_backend("placeholder")            # or "diffusers" (model=...), "api" (model=...)
    backend.check()                                  # UsageError naming the fix
    for result in backend.generate(requests): ...    # one ImageResult per ImageRequest

Nothing heavy is imported here: PIL, torch, diffusers and litellm load inside the backends.
"""

from __future__ import annotations

from pydantic import ValidationError

from stage5cli.errors import UsageError
from stage5cli.images.api import ApiBackend
from stage5cli.images.base import SIZES, ImageBackend, ImageRequest, ImageResult, size_for
from stage5cli.images.diffusers_backend import DiffusersBackend
from stage5cli.images.placeholder import PlaceholderBackend

BACKENDS: dict[str, type[ImageBackend]] = {
    cls.backend_id: cls for cls in (PlaceholderBackend, DiffusersBackend, ApiBackend)
}
DEFAULT_BACKEND = "placeholder"


def get_backend(name: str, **options) -> ImageBackend:
    """An instance of the backend `name` with its options (None values mean 'default').

    Unknown names and bad options raise UsageError with one line."""
    cls = BACKENDS.get((name or "").strip().lower())
    if cls is None:
        raise UsageError(f"unknown image backend {name!r}; known: {', '.join(BACKENDS)}")
    given = {k: v for k, v in options.items() if v is not None}
    try:
        opts = cls.Options(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "options"
        raise UsageError(
            f"{cls.backend_id} backend: {field}: {err.get('msg', 'invalid')}"
        ) from None
    return cls(opts)


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "SIZES",
    "ApiBackend",
    "DiffusersBackend",
    "ImageBackend",
    "ImageRequest",
    "ImageResult",
    "PlaceholderBackend",
    "get_backend",
    "size_for",
]
