"""Which extractor runs: --model, else $STAGE5_MODEL, else the built-in one. Decided here only.

    resolve_model("openai/gpt-4o-mini") -> "openai/gpt-4o-mini"
    resolve_model(None)                 -> $STAGE5_MODEL, or None
    resolve_model("builtin")            -> None   (also "none", "offline", any case)
    resolve(model, api_base=..., options=LLMOptions(...)) -> Extractor

The extractor classes load on first use (the built-in rules and litellm are not imported by
`stage5 --help`).
"""

from __future__ import annotations

import os
from typing import Any

from .base import Extractor, LLMOptions

BUILTIN = "builtin"
OFFLINE_WORDS = frozenset({BUILTIN, "none", "offline"})
MODEL_ENV = "STAGE5_MODEL"


def resolve_model(model: str | None, *, env: bool = True) -> str | None:
    """The model name to use, or None for the built-in extractor.

    `model` (a --model value) wins; else $STAGE5_MODEL when `env`; the words builtin, none and
    offline (and an empty value) mean the built-in extractor.
    """
    value = (model or "").strip() or (os.environ.get(MODEL_ENV, "").strip() if env else "")
    if not value or value.lower() in OFFLINE_WORDS:
        return None
    return value


def resolve(model: str | None = None, *, api_base: str | None = None,
            options: LLMOptions | None = None, env: bool = True, **settings: Any) -> Extractor:
    """The extractor for a --model value (see resolve_model), with its options.

    `options` gives every setting at once (its own model and api_base are replaced by the
    resolved ones when `model`/`api_base` are given); `settings` are LLMOptions fields.
    With env=False, $STAGE5_MODEL is not read: `model` None means the built-in extractor.
    """
    unknown = sorted(set(settings) - set(LLMOptions.model_fields))
    if unknown:
        raise TypeError(f"unknown LLMOptions field(s): {', '.join(unknown)}")
    opts = options if options is not None else LLMOptions()
    name = resolve_model(model if model is not None else opts.model, env=env)
    update: dict[str, Any] = {**settings, "model": name}
    if api_base is not None:
        update["api_base"] = api_base
    opts = opts.model_copy(update=update)
    if name is None:
        from .builtin import BuiltinExtractor

        return BuiltinExtractor(BuiltinExtractor.Options(max_assets=opts.max_assets))
    from .litellm_extractor import LiteLLMExtractor

    return LiteLLMExtractor(opts)


def for_options(options: LLMOptions) -> Extractor:
    """The extractor an options object names as it is (its `model`; no $STAGE5_MODEL)."""
    return resolve(options=options, env=False)
