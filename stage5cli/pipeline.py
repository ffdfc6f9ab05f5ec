"""The whole stage-5 flow for one script, in one place: `stage5 demo` and every `stage5 batch`
worker call `run`.

    result = run(Path("my-film"), Path("script.fountain"),
                 PipelineOptions(style="film-noir", generate=True, lock=True, exports=("json",)))

The steps: init the project, import the style capsule (when a YAML file is given) and lock the
style, extract, then optionally generate an image key for every asset, lock-all (the
gatekeeper) and export. `run` creates the project in `project_dir` (the caller clears or
claims the folder first: demo and batch each have their own rules for what they may delete).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Stage5Error

STAGES = ("init", "style", "extract", "conflicts", "generate", "lock", "export")
EXPORT_FORMATS = ("json", "yaml", "html")
EXPORT_NAMES = {"json": "export.json", "yaml": "export.yaml", "html": "contact-sheet"}
ASSET_TYPES = ("character", "location", "prop")


@dataclass(frozen=True)
class PipelineOptions:
    style: str  # the style id to lock (a built-in one, or the id of `style_file`)
    style_file: Path | None = None  # a style capsule YAML imported into the project first
    model: str | None = None  # LLM for extraction, already resolved (None: built-in extractor)
    api_base: str | None = None
    api_key_env: str | None = None  # the variable whose key is sent to the LLM (secrets.py)
    llm_concurrency: int = 8  # LLM requests in flight (per project; `gate` caps them all)
    timeout: float = 60.0  # seconds per LLM request
    max_assets: int | None = None  # kept of each kind (None: MAX_ASSETS_PER_KIND)
    generate: bool = False  # an image key for every asset (generate --all)
    backend: str = "placeholder"
    image_model: str | None = None
    image_api_base: str | None = None
    resolve_conflicts: bool = False  # settle each visual conflict with the offline rule
    lock: bool = False  # lock-all after generating (unattended: conflicts do not stop it ...)
    strict: bool = False  # ... unless strict: then unresolved conflicts fail the run
    allow_placeholder: bool = False  # lock-all --allow-placeholder
    exports: tuple[str, ...] = ()  # json, yaml, html: written into the project folder
    command: str = "generate"  # the history entry of the generate step


@dataclass
class PipelineResult:
    """What the run did, filled in as it goes (a failed run leaves what it got to)."""

    project: Path
    script: Path
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASSET_TYPES, 0))
    assets: int = 0
    conflicts: int = 0
    images: int = 0  # assets with an image key
    generated: int = 0  # image keys this run made
    images_failed: int = 0
    tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0  # None when a provider did not say
    stage: str | None = None  # draft or locked
    locked: int = 0  # assets lock-all locked
    resolved: list[str] = field(default_factory=list)  # conflicts settled: "NAME: reasoning"
    unresolved: list[str] = field(default_factory=list)  # names the offline rule had no fix for
    exports: dict[str, Path] = field(default_factory=dict)  # format -> what was written
    warnings: list[str] = field(default_factory=list)  # LLM chunks or assets that failed
    image_backend: str | None = None  # the backend that made images (None: none were made)
    backend_loads: int | None = None  # model loads of that backend (diffusers; else None)

    def add_cost(self, cost: float | None) -> None:
        self.cost_usd = None if cost is None or self.cost_usd is None else round(self.cost_usd + cost, 6)


@dataclass(frozen=True)
class Step:
    """A progress report: `stage` (one of STAGES) starts, or is `done`; `detail` is the export
    format for an export that starts."""

    stage: str
    done: bool
    result: PipelineResult
    detail: str | None = None


Progress = Callable[[Step], None]
BackendFor = Callable[[str, str | None, str | None], Any]  # (name, model, api_base) -> backend


def resolve_model(model: str | None) -> str | None:
    """--model, else $STAGE5_MODEL, else None (the built-in extractor)."""
    from .extract.registry import resolve_model as resolve

    return resolve(model)


def preload(opts: PipelineOptions, *, llm: bool = True) -> None:
    """Import now what `run` will need for these options (batch does it once in the parent,
    before forking its workers). `llm`: with a model, import litellm too (seconds; worth it
    only where the workers share the parent's modules)."""
    from . import jobs, locking, project  # noqa: F401
    from .extract import service  # noqa: F401
    from .extract.registry import resolve

    extractor = resolve(opts.model, env=False)  # imports the extractor's own modules
    if llm:
        extractor.preload()  # litellm takes seconds to import and starts no thread doing it
    if opts.exports:
        from . import export  # noqa: F401
    if opts.generate and opts.backend == "placeholder":
        from PIL import Image, ImageDraw, ImageFont  # noqa: F401

        from .images import placeholder, png  # noqa: F401


def _extract(project: Any, script: Path, opts: PipelineOptions, gate: Any) -> Any:
    """The one place the pipeline talks to the extractor."""
    from .extract.base import LLMOptions
    from .extract.service import run as extract

    return extract(project, script, LLMOptions(
        model=opts.model, api_base=opts.api_base, api_key_env=opts.api_key_env,
        concurrency=opts.llm_concurrency,
        timeout=opts.timeout, max_assets=opts.max_assets, gate=gate))


def _get_backend(name: str, model: str | None, api_base: str | None) -> Any:
    from .images import get_backend

    return get_backend(name, model=model, api_base=api_base)


def _fill_counts(res: PipelineResult, project: Any) -> None:
    from .readiness import status

    st = status(project)
    a = st["assets"]
    res.counts = {t: a[t]["total"] for t in ASSET_TYPES}
    res.assets = st["total_assets"]
    res.conflicts = sum(a[t]["conflicts"] for t in a)
    res.images = sum(a[t]["with_image"] for t in a)
    res.stage = st["status"]


def _settle_conflicts(project: Any, res: PipelineResult) -> None:
    """`stage5 conflicts NAME --apply` for every asset with a visual conflict (the offline
    rule); the ones it has no suggestion for are left as they are."""
    from .conflicts import apply_suggestion, list_conflicts
    from .errors import UsageError as NoSuggestion

    for c in list_conflicts(project):
        try:
            s, _ = apply_suggestion(project, str(c.id))
        except NoSuggestion:
            res.unresolved.append(c.name)
            continue
        res.resolved.append(f"{c.name}: {s.reasoning}")


def run(project_dir: Path, script: Path, opts: PipelineOptions, progress: Progress | None = None,
        *, backend_for: BackendFor | None = None, gate: Any = None,
        result: PipelineResult | None = None) -> PipelineResult:
    """Build the project for `script` in `project_dir`. Raises Stage5Error on the first step
    that fails (a failed image is a failure); `result`, when given, is filled in as the run
    goes, so the caller still has what was done. `backend_for(name, model, api_base)` makes
    the image backend (batch keeps one per worker process; default: images.get_backend);
    `gate`: an object with acquire()/release() held around every LLM request (batch's cap
    across all workers)."""
    from . import jobs
    from .locking import lock_all
    from .project import import_style, init_project, lock_style

    res = result if result is not None else PipelineResult(project=Path(project_dir), script=script)
    tell = progress or (lambda step: None)

    def start(stage: str, detail: str | None = None) -> None:
        tell(Step(stage, False, res, detail))

    def done(stage: str) -> None:
        tell(Step(stage, True, res))

    project = None
    try:
        start("init")
        project, _ = init_project(project_dir)
        done("init")
        start("style")
        if opts.style_file is not None:
            import_style(project, Path(opts.style_file))
        lock_style(project, opts.style)
        done("style")
        start("extract")
        outcome = _extract(project, script, opts, gate)
        st = outcome.stats
        res.tokens = int(st.get("input_tokens") or 0) + int(st.get("output_tokens") or 0)
        res.requests = int(st.get("requests") or 0)
        res.add_cost(st.get("cost_usd", 0.0))
        res.warnings = list(outcome.failures)
        # LLM entities the script does not name; assets beyond the cap of one kind
        res.warnings.extend(outcome.result.warnings())
        _fill_counts(res, project)
        done("extract")
        if opts.resolve_conflicts:
            start("conflicts")
            _settle_conflicts(project, res)
            _fill_counts(res, project)
            done("conflicts")
        if opts.generate:
            start("generate")
            backend = (backend_for or _get_backend)(opts.backend, opts.image_model,
                                                    opts.image_api_base)
            sel = jobs.select(project, [], all_=True, missing=False, retry_failed=False)
            plan = jobs.build_requests(project, sel.rows, backend=backend, steps=None, seed=None)
            gen = jobs.run(project, plan, command=opts.command)
            res.add_cost(gen["cost_usd"])
            res.generated = len(gen["done"])
            res.images_failed = len(gen["failed"])
            res.image_backend = opts.backend
            res.backend_loads = getattr(backend, "load_count", None)
            if gen["failed"]:
                first = gen["failed"][0]
                raise Stage5Error(f"{len(gen['failed'])} image(s) failed; first: "
                                  f"{first['asset']}: {first['error']}")
            done("generate")
        if opts.lock:
            start("lock")
            # a pipeline run is unattended: --lock is the consent to lock with conflicts,
            # unless strict makes them fail the run
            res.locked = len(lock_all(project, strict=opts.strict,
                                      allow_placeholder=opts.allow_placeholder,
                                      accept_conflicts=not opts.strict)["locked"])
        _fill_counts(res, project)
        if opts.lock:
            done("lock")
        if opts.exports:
            from .export import write_export

            for fmt in opts.exports:
                start("export", fmt)
                res.exports[fmt] = write_export(project, fmt=fmt, out=Path(project_dir) / EXPORT_NAMES[fmt],
                                                draft=res.stage != "locked")
            done("export")
    finally:
        if project is not None:
            with contextlib.suppress(Exception):
                project.db.conn.close()
    return res
