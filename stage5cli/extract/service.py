"""`stage5 extract` as a function: read the script, run the chosen extractor, store the result.

    run(project, script, LLMOptions(...), progress=None) -> ExtractOutcome
    plan(project, script, LLMOptions(...)) -> dict          (--dry-run; calls nothing)

`opts.model` is taken as given (None or "builtin": the built-in extractor); a command resolves
--model and $STAGE5_MODEL first with extract.registry.resolve_model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stage5cli.errors import UsageError
from stage5cli.gcpause import collector_paused
from stage5cli.project import Project, script_relpath
from stage5cli.secrets import scrub
from stage5cli.store import save_extraction, started_on
from stage5cli.store.extracted import scrubbed

from .base import MAX_SCRIPT_BYTES, ExtractionResult, LLMOptions
from .registry import for_options


@dataclass
class ExtractOutcome:
    report: dict[str, list[str]]  # the changes save_extraction made, by kind
    extractor: str  # "builtin" | "llm"
    model: str | None
    counts: dict[str, int]
    result: ExtractionResult = field(repr=False, default_factory=lambda: ExtractionResult(assets=[]))

    @property
    def failures(self) -> list[str]:
        return self.result.failures

    @property
    def stats(self) -> dict[str, Any]:
        return self.result.stats()


def read_script(path: Path, max_bytes: int = MAX_SCRIPT_BYTES):
    from stage5cli.screenplay import load

    sp = load(path, max_bytes=max_bytes)
    if not sp.scenes or all(s.number == 0 for s in sp.scenes):
        raise UsageError(
            f"{path}: no scene headings found, nothing to extract "
            "(check how it reads with stage5 parse)")
    return sp


def plan(project: Project, script: Path, opts: LLMOptions) -> dict[str, Any]:
    """--dry-run: what would be sent, without calling anything."""
    _, capsule = project.require_style()
    sp = read_script(script, opts.max_bytes)
    extractor = for_options(opts)
    base = {"script": str(script), "scenes": sum(1 for s in sp.scenes if s.number > 0),
            "extractor": extractor.extractor_id, "model": extractor.model}
    return {**base, **extractor.plan(sp, style_name=capsule.name)}


def run(project: Project, script: Path, opts: LLMOptions,
        progress: Callable[[str, int, int], None] | None = None) -> ExtractOutcome:
    _, capsule = project.require_style()
    project.require_draft("extract")
    started = started_on(project)  # a model run takes minutes: save only into this branch/style
    sp = read_script(script, opts.max_bytes)
    extractor = for_options(opts)
    result = extractor.extract(sp, db=project.db, style_name=capsule.name, progress=progress)
    from stage5cli.breakdown.categories import finish_extraction

    with collector_paused():  # thousands of assets copied and saved: no cycles to collect
        extracted = finish_extraction(
            scrubbed(result.assets, from_provider=extractor.extractor_id != "builtin"), sp)
    result.assets = extracted
    result.tag_warnings = list(sp.tag_warnings or [])  # (screenplay/fdx_tags.py)
    result.failures = [scrub(f) for f in result.failures]
    # a run with a failed pass did not look at everything, and one that left assets out by the
    # cap of one kind did not keep everything it saw: it marks nothing stale
    with collector_paused():
        report = save_extraction(project, extracted, extractor=extractor.extractor_id,
                                 model=extractor.model,
                                 script_path=script_relpath(project, script),
                                 script_sha256=sp.source.sha256,
                                 mark_stale=not (result.failures or result.left_out),
                                 started=started)
    counts = {t: sum(1 for a in extracted if a.type == t) for t in ("character", "prop", "location")}
    return ExtractOutcome(report=report, extractor=extractor.extractor_id, model=extractor.model,
                          counts=counts, result=result)
