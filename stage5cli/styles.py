"""Visual style capsules: validation, built-ins, project imports, the lock, prompt composition."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import NotFoundError, UsageError

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
STYLE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(30, ge=1, le=200)
    guidance: float = Field(7.0, ge=0.0, le=30.0)
    sampler: str = "Euler a"
    seed: int = Field(1234, ge=0, le=2**32 - 1)


class AssetTypeAdditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    character: str = ""
    prop: str = ""
    location: str = ""


class StyleCapsule(BaseModel):
    """A named visual style. Built-ins ship as YAML under prompts/styles/."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    prompt: str
    negative_prompt: str = ""
    palette: list[str] = Field(min_length=1, max_length=12)
    lighting: str = ""
    camera: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    asset_types: AssetTypeAdditions = Field(default_factory=AssetTypeAdditions)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not STYLE_ID.match(v):
            raise ValueError("must be lower-case letters, digits and '-' (2-64 characters)")
        return v

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if v.count("{subject}") != 1:
            raise ValueError("must contain the {subject} slot exactly once")
        return v

    @field_validator("palette")
    @classmethod
    def _palette(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not HEX.match(c)]
        if bad:
            raise ValueError(f"colours must be #rrggbb hex, got {bad[0]!r}")
        return [c.lower() for c in v]

    def sha256(self) -> str:
        return body_sha256(self.model_dump(mode="json"))


def body_sha256(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _one_line_validation(err: ValidationError, label: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "missing":
        msg = "field required"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    else:
        msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return f"{label}: {loc}: {msg}{more}"


def parse_capsule(data: Any, label: str) -> StyleCapsule:
    if not isinstance(data, dict):
        raise UsageError(f"{label}: a style capsule must be a YAML mapping")
    try:
        return StyleCapsule.model_validate(data)
    except ValidationError as e:
        raise UsageError(_one_line_validation(e, label)) from None


def load_yaml_file(path: Path) -> StyleCapsule:
    import yaml

    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{label}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{label}: cannot read ({e.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise UsageError(f"{label}: {where}{problem}") from None
    return parse_capsule(data, label)


def builtin_dir() -> Path:
    from importlib.resources import files

    return Path(str(files("stage5cli.prompts") / "styles"))


_builtins: dict[str, StyleCapsule] | None = None


def builtin_styles() -> dict[str, StyleCapsule]:
    """Every built-in capsule by id (loaded once per process)."""
    global _builtins
    if _builtins is None:
        found: dict[str, StyleCapsule] = {}
        for path in sorted(builtin_dir().glob("*.yaml")):
            capsule = load_yaml_file(path)
            found[capsule.id] = capsule
        _builtins = found
    return _builtins


def suggest(name: str, choices: list[str], n: int = 3) -> str:
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=n, cutoff=0.4)
    originals = {c.lower(): c for c in choices}
    if not close:
        return ""
    return "; did you mean: " + ", ".join(originals[c] for c in close)


def compose_prompt(capsule: StyleCapsule, *, name: str, asset_type: str, description: str,
                   budget: Any = None) -> str:
    """The one place an image prompt is built: style template + subject + type + look, sized
    to `budget` (an images.budget.TextBudget; None: no limit). See stage5cli.prompting."""
    from .prompting import compose

    return compose(capsule, name=name, asset_type=asset_type, description=description,
                   budget=budget).text
