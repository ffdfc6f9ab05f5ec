"""Plain records for the read path: the views `status`, `review` and `show` build and print.

They are stdlib dataclasses, not pydantic models: pydantic (~40 ms to import, ~75 ms to build
the first model) stays off the everyday commands. Validation belongs where input comes from
outside (style import, LLM answers, the image API: models.py, styles.py); these records are
made by stage5 from its own database. `model_dump()` gives the same dict a pydantic model of
the same fields would (`mode` is accepted for the callers that pass it; every field is already
JSON-ready).
"""

from __future__ import annotations

import dataclasses
from typing import Any

ASSET_TYPES: tuple[str, ...] = ("character", "prop", "location")


class _Fields:
    """`Record.model_fields`: field name -> dataclasses.Field, in order (pydantic's names)."""

    def __get__(self, obj: Any, cls: type) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}


class Record:
    """Mixin for a `@dataclass`: `model_dump()` and `model_fields` as a pydantic model has
    them."""

    __slots__ = ()
    model_fields = _Fields()

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:  # noqa: ARG002
        return dataclasses.asdict(self)  # type: ignore[call-overload]
