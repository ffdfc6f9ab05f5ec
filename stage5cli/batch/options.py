"""What a batch is asked to do: `BatchOptions`, the style it locks, and the usage checks made
before anything runs (each problem is a one-line UsageError, exit 2)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stage5cli.errors import UsageError
from stage5cli.pipeline import EXPORT_FORMATS

DEFAULT_LLM_CONCURRENCY = 8
ENGINES = ("local", "ray")  # local: a process pool here; ray: one Ray task per script


@dataclass
class BatchOptions:
    style: str  # a style id (built-in) or a style capsule YAML file
    out: Path
    model: str | None = None  # LLM for extraction (None: $STAGE5_MODEL, else built-in)
    api_base: str | None = None
    api_key_env: str | None = None  # --api-key-env: the variable whose key the LLM gets
    generate: bool = False
    backend: str = "placeholder"
    image_model: str | None = None
    image_api_base: str | None = None
    lock: bool = False
    strict: bool = False  # lock-all --strict: unresolved conflicts fail the script
    allow_placeholder: bool = False  # lock-all --allow-placeholder
    exports: tuple[str, ...] = ()
    jobs: int | None = None  # worker processes (None: the CPUs this process may use)
    llm_concurrency: int = DEFAULT_LLM_CONCURRENCY
    timeout: float = 60.0  # seconds per LLM request
    max_assets: int | None = None  # kept of each kind per script (None: MAX_ASSETS_PER_KIND)
    force: bool = False
    fail_fast: bool = False
    engine: str = "local"
    ray_address: str | None = None  # --engine ray: auto, HOST:PORT, ray://HOST:PORT (None: local)
    image_concurrency: int | None = None  # --engine ray: image requests in flight (None: no cap)


@dataclass
class Style:
    id: str
    sha256: str
    file: str | None = None  # a capsule YAML imported into each project


def resolve_style(style: str) -> Style:
    """A built-in style id, or a capsule YAML file (validated). UsageError when neither."""
    from stage5cli.project import find_style
    from stage5cli.styles import load_yaml_file

    p = Path(style).expanduser()
    if p.suffix.lower() in (".yaml", ".yml") or p.is_file():
        from stage5cli.styles import builtin_styles

        capsule = load_yaml_file(p)
        if capsule.id in builtin_styles():
            raise UsageError(f"{p}: id: {capsule.id!r} is a built-in style; choose another id")
        return Style(id=capsule.id, sha256=capsule.sha256(), file=str(p.resolve()))
    capsule = find_style(None, style)
    return Style(id=capsule.id, sha256=capsule.sha256())


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def import_ray() -> Any:
    """The ray module (--engine ray), or one UsageError line naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'stage5[ray]'") from None
    return ray


def check_options(opts: BatchOptions) -> None:
    """Bad usage, before anything runs (every problem is a one-line UsageError, exit 2)."""
    from stage5cli.images import BACKENDS

    if opts.jobs is not None and opts.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {opts.jobs})")
    if opts.llm_concurrency < 1:
        raise UsageError(f"--llm-concurrency must be at least 1 (got {opts.llm_concurrency})")
    if opts.timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds (got {opts.timeout})")
    bad = [f for f in opts.exports if f not in EXPORT_FORMATS]
    if bad:
        raise UsageError(f"unknown export format {bad[0]!r}: use {', '.join(EXPORT_FORMATS)}")
    if opts.backend not in BACKENDS:
        raise UsageError(f"unknown image backend {opts.backend!r}; known: {', '.join(BACKENDS)}")
    if opts.engine not in ENGINES:
        raise UsageError(f"unknown engine {opts.engine!r}: use {' or '.join(ENGINES)}")
    if opts.engine != "ray" and (opts.ray_address or opts.image_concurrency is not None):
        flag = "--ray-address" if opts.ray_address else "--image-concurrency"
        raise UsageError(f"{flag} needs --engine ray (on local, --jobs bounds the image jobs)")
    if opts.image_concurrency is not None and opts.image_concurrency < 1:
        raise UsageError(f"--image-concurrency must be at least 1 (got {opts.image_concurrency})")
    if opts.engine == "ray":  # installed? (one line naming the extra, before anything runs)
        import_ray()
    if opts.lock and not opts.generate:
        raise UsageError("--lock needs --generate: every asset needs an image key before "
                         "stage 5 can be locked")
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create --out {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"cannot write to --out {out}: permission denied")


def check_output_file(path: Path | None, flag: str) -> None:
    """--report / --junit must name a file that can be written (checked before the run)."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is a file, not a folder")


@dataclass
class Task:
    """One script of the batch: where it is, where its project goes, what decides it is done."""

    index: int
    script: str  # absolute path
    display: str  # as shown in the report
    project: str
    sha256: str | None
    style: Style
    options_hash: str
    opts: BatchOptions
