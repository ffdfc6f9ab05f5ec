"""`stage5 extract`: read the script, run the chosen extractor, store the result."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assets import save_extraction
from .errors import UsageError
from .project import Project

BUILTIN = "builtin"


@dataclass
class ExtractOptions:
    model: str | None = None
    api_base: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    chunk_tokens: int = 6000
    use_cache: bool = True
    max_bytes: int = 10_000_000
    # An object with blocking acquire()/release(), held around every LLM request: `stage5
    # batch` passes one multiprocessing semaphore shared by all its workers (a global cap).
    gate: Any = field(default=None, repr=False, compare=False)

    @property
    def extractor(self) -> str:
        return "llm" if self.model else BUILTIN


@dataclass
class ExtractOutcome:
    report: dict[str, list[str]]
    extractor: str
    model: str | None
    counts: dict[str, int]
    failures: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def resolve_model(model: str | None) -> str | None:
    """--model, else $STAGE5_MODEL, else None (the built-in extractor)."""
    value = model or os.environ.get("STAGE5_MODEL") or None
    if value and value.lower() in (BUILTIN, "none", "offline"):
        return None
    return value


def read_script(path: Path, max_bytes: int):
    from .screenplay import load

    sp = load(path, max_bytes=max_bytes)
    if not sp.scenes or all(s.number == 0 for s in sp.scenes):
        raise UsageError(
            f"{path}: no scene headings found, nothing to extract "
            "(check how it reads with stage5 parse)")
    return sp


def _llm_settings(opts: ExtractOptions):
    from .extract.llm import LLMSettings

    return LLMSettings(model=opts.model, api_base=opts.api_base, concurrency=opts.concurrency,
                       timeout=opts.timeout, chunk_tokens=opts.chunk_tokens,
                       use_cache=opts.use_cache, gate=opts.gate,
                       retry_backoff=retry_backoff())


def retry_backoff() -> float:
    """First retry wait in seconds ($STAGE5_RETRY_BACKOFF, default 1; doubles per retry)."""
    raw = os.environ.get("STAGE5_RETRY_BACKOFF", "1")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"STAGE5_RETRY_BACKOFF must be a number of seconds, got {raw!r}") from None
    if not 0 <= value <= 60:
        raise UsageError("STAGE5_RETRY_BACKOFF must be between 0 and 60 seconds")
    return value


def plan(project: Project, script: Path, opts: ExtractOptions) -> dict[str, Any]:
    """--dry-run: what would be sent, without calling anything."""
    _, capsule = project.require_style()
    sp = read_script(script, opts.max_bytes)
    base = {"script": str(script), "scenes": sum(1 for s in sp.scenes if s.number > 0),
            "extractor": opts.extractor, "model": opts.model}
    if not opts.model:
        return {**base, "requests": 0, "input_tokens_estimate": 0, "cost_usd_estimate": 0.0}
    from .extract.llm import plan_llm

    return {**base, **plan_llm(sp, _llm_settings(opts), style_name=capsule.name)}


def run(project: Project, script: Path, opts: ExtractOptions,
        progress: Callable[[str, int, int], None] | None = None) -> ExtractOutcome:
    _, capsule = project.require_style()
    project.require_draft("extract")
    sp = read_script(script, opts.max_bytes)
    failures: list[str] = []
    stats: dict[str, Any] = {}
    if opts.model:
        from .extract.llm import run_extract_llm

        rep = run_extract_llm(sp, project.db, _llm_settings(opts), style_name=capsule.name,
                              progress=progress)
        extracted, failures = rep.assets, list(rep.failures)
        stats = {"requests": rep.requests, "cache_hits": rep.cache_hits,
                 "input_tokens": rep.input_tokens, "output_tokens": rep.output_tokens,
                 "cost_usd": rep.cost_usd}
    else:
        from .extract.builtin import extract_builtin

        if progress:
            progress("extract", 0, 1)
        extracted = extract_builtin(sp, style_name=capsule.name)
        if progress:
            progress("extract", 1, 1)
        stats = {"requests": 0, "cache_hits": 0, "input_tokens": 0, "output_tokens": 0,
                 "cost_usd": 0.0}
    from .breakdown.categories import finish_extraction

    extracted = finish_extraction(extracted, sp)  # the script's own tags, then categories
    report = save_extraction(project, extracted, extractor=opts.extractor, model=opts.model,
                             script_path=str(script), script_sha256=sp.source.sha256)
    counts = {t: sum(1 for a in extracted if a.type == t) for t in ("character", "prop", "location")}
    if sp.tag_warnings:  # the script's own tags that could not be read (screenplay/fdx_tags.py)
        stats["tag_warnings"] = list(sp.tag_warnings)
    return ExtractOutcome(report=report, extractor=opts.extractor, model=opts.model,
                          counts=counts, failures=failures, stats=stats)
