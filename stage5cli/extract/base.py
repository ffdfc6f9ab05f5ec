"""The one shape of an extractor, its options and its result (cf. images/base.py).

    Extractor            built-in (extract/builtin/) or litellm (extract/litellm_extractor.py);
                         pick one with extract.registry.resolve(--model), never with `if model`
    LLMOptions           every setting of an extraction run and of one LLM call
    ExtractionResult     what extract() returns: assets, failures, requests, tokens, cost
    ConflictFix          what suggest_conflict_fix() returns

Light on purpose: importing it loads neither litellm nor the built-in rules.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stage5cli.errors import UsageError
from stage5cli.models import ExtractedAsset

if TYPE_CHECKING:
    import sqlite_utils

    from stage5cli.screenplay.model import Screenplay

Progress = Callable[[str, int, int], None]
DEFAULT_RETRY_BACKOFF = 1.0
AUTO_CONCURRENCY_CAP = 32  # concurrency None: min(this, the requests of a pass) in flight


def auto_concurrency(requests: int, cap: int = AUTO_CONCURRENCY_CAP) -> int:
    """The default number of requests in flight for a pass of `requests` requests."""
    return max(1, min(cap, requests))
MAX_SCRIPT_BYTES = 10_000_000


def retry_backoff_from_env() -> float:
    """First retry wait in seconds ($STAGE5_RETRY_BACKOFF, default 1; doubles per retry)."""
    raw = os.environ.get("STAGE5_RETRY_BACKOFF", str(DEFAULT_RETRY_BACKOFF))
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"STAGE5_RETRY_BACKOFF must be a number of seconds, got {raw!r}") from None
    if not 0 <= value <= 60:
        raise UsageError("STAGE5_RETRY_BACKOFF must be between 0 and 60 seconds")
    return value


class LLMOptions(BaseModel):
    """Settings of an extraction run (`extract`, `describe`, `conflicts --suggest`, `batch`).

    `model` None (or the word builtin) means the built-in extractor; the LLM fields are then
    unused. `retry_backoff` None reads $STAGE5_RETRY_BACKOFF when a request is retried, so
    every command that calls a model honours it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None  # --api-key-env: the variable whose key is sent (secrets.py)
    concurrency: int | None = None  # None: auto_concurrency(requests of the pass)
    timeout: float = 60.0
    chunk_tokens: int = 6000
    use_cache: bool = True
    max_bytes: int = MAX_SCRIPT_BYTES  # a larger script is refused before it is read
    # assets kept of each kind (--max-assets; None: store.extracted.MAX_ASSETS_PER_KIND)
    max_assets: int | None = None
    max_retries: int = 3
    retry_backoff: float | None = None  # first backoff in seconds; doubles per retry
    # A cross-process cap (stage5 batch): an object with blocking acquire()/release(), held
    # around every request on top of this run's own semaphore. Not part of a dump.
    gate: Any = Field(default=None, exclude=True, repr=False)

    def backoff(self) -> float:
        """The first retry wait: retry_backoff, else $STAGE5_RETRY_BACKOFF (UsageError if bad)."""
        return retry_backoff_from_env() if self.retry_backoff is None else self.retry_backoff

    def check(self) -> None:
        """Refuse settings no request could run with (one UsageError line)."""
        if not (self.model or "").strip():
            raise UsageError("no model given (use --model or set STAGE5_MODEL)")
        if self.concurrency is not None and self.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1 (got {self.concurrency})")
        if not self.timeout or self.timeout <= 0:
            raise UsageError(f"--timeout must be more than 0 seconds (got {self.timeout})")
        if self.chunk_tokens < 1:
            raise UsageError(f"--chunk-tokens must be at least 1 (got {self.chunk_tokens})")
        if self.max_retries < 0:
            raise UsageError("max_retries cannot be negative")
        self.backoff()


class ExtractionResult(BaseModel):
    """The assets an extractor found, what failed, and what it cost."""

    assets: list[ExtractedAsset]
    failures: list[str] = Field(default_factory=list)  # chunks/assets whose answer stayed invalid
    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None: the model's price is unknown
    script_tokens: int = 0
    pass1_input_tokens: int = 0
    tag_warnings: list[str] = Field(default_factory=list)  # the script's own tags we could not read
    # LLM entities none of whose names occur in the chunk they came from ("type: name"), dropped
    ungrounded: list[str] = Field(default_factory=list)
    concurrency: list[int] = Field(default_factory=list)  # requests in flight, per LLM pass
    # kind -> assets found beyond the cap of one kind (store.extracted.MAX_ASSETS_PER_KIND),
    # the least-seen, left out of the result
    left_out: dict[str, int] = Field(default_factory=dict)
    max_assets: int | None = None  # the cap that run kept to (None: MAX_ASSETS_PER_KIND)

    def grounding_warning(self) -> str | None:
        """One line about the dropped ungrounded entities, or None."""
        if not self.ungrounded:
            return None
        n = len(self.ungrounded)
        shown = ", ".join(self.ungrounded[:8]) + (f" and {n - 8} more" if n > 8 else "")
        return (f"dropped {n} entit{'y' if n == 1 else 'ies'} not found in the script "
                f"(the model named them, the text does not): {shown}")

    def left_out_warning(self) -> str | None:
        """One line about the assets left out by the cap of one kind, or None."""
        if not self.left_out:
            return None
        from stage5cli.store import extracted

        parts = [f"{n:,} {kind}{'' if n == 1 else 's'}" for kind, n in sorted(self.left_out.items())]
        kinds = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
        cap = self.max_assets or extracted.MAX_ASSETS_PER_KIND
        return (f"left out the {kinds} seen in the fewest scenes: at most {cap:,} of each kind "
                "are kept from one script (raise it with --max-assets N; nothing was marked "
                "stale)")

    def warnings(self) -> list[str]:
        """The lines `extract` and `batch` warn with: dropped ungrounded entities, the cap."""
        return [w for w in (self.grounding_warning(), self.left_out_warning()) if w]

    def stats(self) -> dict[str, Any]:
        """The figures `extract --json` and `batch` report."""
        return {"requests": self.requests, "cache_hits": self.cache_hits,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": self.cost_usd,
                **({"tag_warnings": list(self.tag_warnings)} if self.tag_warnings else {}),
                **({"ungrounded": len(self.ungrounded), "ungrounded_names": list(self.ungrounded)}
                   if self.ungrounded else {}),
                **({"left_out": dict(self.left_out)} if self.left_out else {})}


class ConflictFix(BaseModel):
    """A consistent description for an asset with visual conflicts, and why."""

    description: str
    reasoning: str = ""


class Extractor(ABC):
    """One way to turn a screenplay into assets. Subclasses set the class attributes."""

    extractor_id: ClassVar[str]  # stored as metadata.extractor: "builtin" | "llm"
    needs_key: ClassVar[bool] = False  # whether it may need an API key in the environment
    # True when suggest_conflict_fix() answers; otherwise `conflicts --suggest` applies the
    # offline majority rule over the stored mentions (conflicts.offline_suggestion)
    suggests_conflict_fixes: ClassVar[bool] = False

    class Options(BaseModel):
        """The extractor's own settings (none for the built-in one)."""

    def __init__(self, options: BaseModel | None = None):
        self.options = options if options is not None else self.Options()

    @property
    def model(self) -> str | None:
        """The model name recorded with the results (None for the built-in extractor)."""
        return None

    @property
    def noun(self) -> str:
        """What messages call it: "the built-in extractor returned ..." / "the model ..."."""
        return "built-in extractor"

    @property
    def name(self) -> str:
        """A short name for summaries: "built-in", or the model name."""
        return self.model or "built-in"

    @property
    def key_env_var(self) -> str | None:
        """The environment variable(s) its API key is read from, or None."""
        return None

    @abstractmethod
    def extract(self, screenplay: Screenplay, *, db: sqlite_utils.Database, style_name: str,
                progress: Progress | None = None) -> ExtractionResult:
        """Both passes over a parsed script."""

    @abstractmethod
    def distill(self, asset: ExtractedAsset, *, db: sqlite_utils.Database, style_name: str,
                script: Callable[[], Screenplay], instructions: str | None = None,
                ) -> ExtractedAsset:
        """Pass 2 for one asset (`describe`). `script` loads the project's script, for an
        extractor that reads it."""

    def suggest_conflict_fix(self, asset: ExtractedAsset, *, db: sqlite_utils.Database,
                             style_name: str) -> ConflictFix | None:
        """A description that settles the asset's conflicts, or None (no rewrite of its own)."""
        return None

    @abstractmethod
    def plan(self, screenplay: Screenplay, *, style_name: str) -> dict[str, Any]:
        """`extract --dry-run`: the requests, tokens and cost a run would take. Calls nothing."""

    @abstractmethod
    def check_environment(self) -> tuple[str, bool, str]:
        """`doctor`: (check name, ok, detail) for what this extractor needs to run."""

    def preload(self) -> None:
        """Import what a run needs (`batch` does it once before forking workers); importing
        the extractor's module already loads the built-in rules."""
        return None
