"""One script of a batch: build its project through `pipeline.run` and say how it went.

`process` runs wherever the runner puts it (a worker process, later a remote worker); it never
raises: the error is in the `BatchResult`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stage5cli.errors import Stage5Error
from stage5cli.pipeline import ASSET_TYPES, PipelineOptions, PipelineResult, Step

from . import state
from .options import BatchOptions, Style, Task


@dataclass
class BatchResult:
    """One script's line in the report (`to_dict` is its JSON, field for field)."""

    script: str
    project: str
    status: str = "failed"  # ok, failed or skipped
    error: str | None = None
    reason: str | None = None  # why skipped
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASSET_TYPES, 0))
    assets: int = 0
    conflicts: int = 0
    images: int = 0
    images_failed: int = 0
    tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0  # None when unknown
    stage: str | None = None  # draft or locked
    exports: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    # Keys only some results have, written after the others: `backend_loads` (model loads of
    # the worker's image backend; null for a backend that loads none) once images were made,
    # and whatever else a marker of this version stored.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d["counts"], d["exports"], d["warnings"] = dict(self.counts), list(self.exports), list(self.warnings)
        return {**d, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchResult:
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in names},
                   extra={k: v for k, v in data.items() if k not in names})


def blank_result(task: Task) -> BatchResult:
    return BatchResult(script=task.display, project=task.project)


_BACKENDS: dict[tuple[str, str | None, str | None], Any] = {}  # one backend per worker


def worker_backend(name: str, model: str | None, api_base: str | None) -> Any:
    """This process's image backend for (name, model, api_base), created once and reused, so
    a diffusers pipeline is loaded once per worker however many scripts it handles."""
    from stage5cli.images import get_backend

    key = (name, model, api_base)
    if key not in _BACKENDS:
        _BACKENDS[key] = get_backend(name, model=model, api_base=api_base)
    return _BACKENDS[key]


def pipeline_options(opts: BatchOptions, style: Style) -> PipelineOptions:
    return PipelineOptions(
        style=style.id, style_file=Path(style.file) if style.file else None, model=opts.model,
        api_base=opts.api_base, api_key_env=opts.api_key_env, llm_concurrency=opts.llm_concurrency, timeout=opts.timeout,
        max_assets=opts.max_assets,
        generate=opts.generate, backend=opts.backend, image_model=opts.image_model,
        image_api_base=opts.image_api_base, lock=opts.lock, strict=opts.strict,
        allow_placeholder=opts.allow_placeholder, exports=opts.exports,
        command="batch generate")


def _copy(pr: PipelineResult, res: BatchResult) -> None:
    res.counts, res.assets, res.conflicts = dict(pr.counts), pr.assets, pr.conflicts
    res.images, res.images_failed, res.stage = pr.images, pr.images_failed, pr.stage
    res.tokens, res.requests, res.cost_usd = pr.tokens, pr.requests, pr.cost_usd
    res.exports = [str(p) for p in pr.exports.values()]
    res.warnings = list(pr.warnings)
    if pr.image_backend is not None:
        res.extra["backend_loads"] = pr.backend_loads


def process(task: Task, *, gate: Any = None,
            notify: Callable[[str], None] | None = None) -> BatchResult:
    """Build one script's project from scratch; never raises (the error is in the result).
    `notify(stage)` hears each stage as it starts: init, extract, generate, lock, export."""
    from stage5cli import pipeline
    from stage5cli.db import close_all
    from stage5cli.errors import describe_unexpected

    t0 = time.perf_counter()
    res = blank_result(task)
    say = notify or (lambda stage: None)
    pr = PipelineResult(project=Path(task.project), script=Path(task.script))

    def forward(step: Step) -> None:
        if not step.done and step.stage not in ("init", "style"):
            say(step.stage)

    try:
        say("init")
        root = state.claim(task)
        pipeline.run(root, Path(task.script), pipeline_options(task.opts, task.style), forward,
                     backend_for=worker_backend, gate=gate, result=pr)
        res.status = "ok"
    except Stage5Error as e:
        res.error = str(e)
    except Exception as e:  # noqa: BLE001 - one script's bug must not stop the batch
        res.error = describe_unexpected(e)
    finally:
        close_all()
    _copy(pr, res)
    res.wall_s = round(time.perf_counter() - t0, 3)
    if res.status == "ok":
        try:
            state.mark_done(task, res.to_dict())
        except Stage5Error as e:
            res.status, res.error = "failed", str(e)
    return res
