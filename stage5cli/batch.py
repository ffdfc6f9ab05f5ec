"""`stage5 batch`: many scripts, one project each, in parallel worker processes, resumable.

    report = run_batch(["scripts/"], BatchOptions(style="film-noir", out=Path("out"),
                                                  generate=True, lock=True, exports=("json",)))
    write_report(report, Path("report.json")); write_junit(report, Path("junit.xml"))
    sys.exit(exit_code(report))

Each script gets its own project folder OUT/<stem>/ (stems that collide, case-insensitively,
become stem-2, stem-3 ... in path order). The pipeline per script: init, (import the style
file,) lock the style, extract, optionally generate, lock-all, export. When it finishes, a
marker OUT/<stem>/batch.json records the script's sha256, the style and a hash of the options;
a later run with the same inputs skips the script, and a folder without the marker (a failed
or killed run) is rebuilt from scratch. Workers are processes; LLM requests of all workers
share one semaphore (the gate), and each worker keeps one image backend instance, so a
diffusers pipeline is loaded once per worker, not once per script.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import files
from .errors import Stage5Error, UsageError

SCRIPT_EXTENSIONS = (".fountain", ".fdx", ".pdf", ".txt")
EXPORT_FORMATS = ("json", "yaml", "html")
MARKER = "batch.json"
MARKER_VERSION = 1
REPORT_VERSION = 1
DEFAULT_LLM_CONCURRENCY = 8
UP_TO_DATE = "up to date: finished earlier with the same script, style and options"
INTERRUPTED = "interrupted"
EXPORT_NAMES = {"json": "export.json", "yaml": "export.yaml", "html": "contact-sheet"}
# folders never searched for scripts
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}

Event = Callable[[dict[str, Any]], None]


@dataclass
class BatchOptions:
    style: str  # a style id (built-in) or a style capsule YAML file
    out: Path
    model: str | None = None  # LLM for extraction (None: $STAGE5_MODEL, else built-in)
    api_base: str | None = None
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
    force: bool = False
    fail_fast: bool = False


@dataclass
class Style:
    id: str
    sha256: str
    file: str | None = None  # a capsule YAML imported into each project


@dataclass
class Task:
    index: int
    script: str  # absolute path
    display: str  # as shown in the report
    project: str
    sha256: str | None
    style: Style
    options_hash: str
    opts: BatchOptions


# ---- inputs ----------------------------------------------------------------------------------


def _is_script(p: Path) -> bool:
    return p.suffix.lower() in SCRIPT_EXTENSIONS and p.is_file()


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _search(folder: Path, exclude: Path | None, pruned: list[Path]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or d in _SKIP_DIRS:
                continue
            if _inside((here / d).resolve(), exclude):
                pruned.append(here / d)
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = here / name
            if not name.startswith(".") and _is_script(p):
                found.append(p)
    return found


def discover(inputs: list[str], *, exclude: Path | None = None) -> list[Path]:
    """Script files from files, folders (searched recursively) and glob patterns; absolute,
    deduplicated, sorted. A literal path that does not exist is a UsageError; so is finding
    nothing at all. Anything under `exclude` (the output folder) is left out."""
    if not inputs:
        raise UsageError("no inputs: name script files, folders or glob patterns")
    exclude = exclude.resolve() if exclude is not None else None
    found: dict[str, Path] = {}
    ignored = 0  # files named inside the --out folder
    pruned: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            hits = _search(p, exclude, pruned)
        elif p.is_file():
            hits = [p]  # named explicitly: read whatever it is (the loader detects the format)
        elif any(c in raw for c in "*?["):
            hits = []
            for m in sorted(glob.glob(os.path.expanduser(raw), recursive=True)):
                q = Path(m)
                if q.is_dir():
                    hits += _search(q, exclude, pruned)
                elif _is_script(q):
                    hits.append(q)
        else:
            raise UsageError(f"no such file or folder: {raw}")
        for h in hits:
            a = h.resolve()
            if _inside(a, exclude):
                ignored += 1
            else:
                found.setdefault(str(a), a)
    if not found:
        shown = ", ".join(inputs[:3]) + (" ..." if len(inputs) > 3 else "")
        why = "; the --out folder is never searched" if ignored or pruned else ""
        raise UsageError(f"no scripts found in {shown} (looked for "
                         f"{', '.join('*' + e for e in SCRIPT_EXTENSIONS)}{why})")
    return sorted(found.values(), key=lambda q: q.as_posix())


def safe_stem(path: Path) -> str:
    stem = re.sub(r"[^\w.-]+", "-", path.stem).strip(".-")
    return stem[:80] or "script"


def project_names(scripts: list[Path]) -> dict[Path, str]:
    """A folder name per script: its stem, and for stems that collide (case-insensitively)
    stem-2, stem-3 ... in path order, never reusing a name another script has as its stem."""
    ordered = sorted(scripts, key=lambda q: q.as_posix())
    names: dict[Path, str] = {}
    used: set[str] = set()
    later: list[Path] = []
    for s in ordered:  # first pass: every first holder of a stem keeps it
        stem = safe_stem(s)
        if stem.lower() in used:
            later.append(s)
        else:
            used.add(stem.lower())
            names[s] = stem
    for s in later:
        stem, n = safe_stem(s), 2
        while f"{stem}-{n}".lower() in used:
            n += 1
        used.add(f"{stem}-{n}".lower())
        names[s] = f"{stem}-{n}"
    return names


def _display(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


# ---- options, style, markers -----------------------------------------------------------------


def resolve_style(style: str) -> Style:
    """A built-in style id, or a capsule YAML file (validated). UsageError when neither."""
    from .project import find_style
    from .styles import load_yaml_file

    p = Path(style).expanduser()
    if p.suffix.lower() in (".yaml", ".yml") or p.is_file():
        from .styles import builtin_styles

        capsule = load_yaml_file(p)
        if capsule.id in builtin_styles():
            raise UsageError(f"{p}: id: {capsule.id!r} is a built-in style; choose another id")
        return Style(id=capsule.id, sha256=capsule.sha256(), file=str(p.resolve()))
    capsule = find_style(None, style)
    return Style(id=capsule.id, sha256=capsule.sha256())


def options_hash(opts: BatchOptions, style: Style) -> str:
    """What decides a project's content: extractor, images, lock, exports and the style.
    (The API base URL and the worker counts are left out: they do not change the result.)"""
    data = {"v": MARKER_VERSION, "model": opts.model, "generate": opts.generate,
            "backend": opts.backend if opts.generate else None,
            "image_model": opts.image_model if opts.generate else None,
            "lock": opts.lock, "exports": sorted(set(opts.exports)),
            "style": style.id, "style_sha256": style.sha256}
    data.update({k: True for k in ("strict", "allow_placeholder") if opts.lock and getattr(opts, k)})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str | None:
    try:
        return files.sha256_of(path)
    except OSError:
        return None


def read_marker(project: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((project / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(task: Task) -> dict[str, Any] | None:
    """The stored result when the project finished with the same script, style and options."""
    root = Path(task.project)
    m = read_marker(root)
    if (m is None or m.get("version") != MARKER_VERSION or m.get("state") != "done"
            or task.sha256 is None or not (root / "stage5.db").is_file()):
        return None
    same = (m.get("script_sha256") == task.sha256 and m.get("style") == task.style.id
            and m.get("style_sha256") == task.style.sha256
            and m.get("options_hash") == task.options_hash)
    return m.get("result") if same and isinstance(m.get("result"), dict) else None


def _write_atomic(path: Path, text: str) -> Path:
    """Write through a temp file in the same folder and a rename."""
    try:
        files.write_text(path, text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    return Path(path)


def _ours(root: Path) -> bool:
    """A folder batch made: a project, a claimed folder, or only what a killed run leaves."""
    if (root / "stage5.db").is_file() or (root / MARKER).is_file():
        return True
    return all(e.name == "images" or e.name.startswith((".stage5.db", f".{MARKER}."))
               for e in root.iterdir())


def _clear(root: Path) -> None:
    """Remove an unfinished/outdated project folder; refuse to touch anything else."""
    if not root.exists() and not root.is_symlink():
        return
    if not root.is_dir() or root.is_symlink():
        raise UsageError(f"{root} exists and is not a project folder; remove it or choose another --out")
    if not _ours(root):
        raise UsageError(f"{root} exists and is not a stage5 project; remove it or choose another --out")
    try:
        shutil.rmtree(root)
    except OSError as e:
        raise UsageError(f"cannot remove the old project {root}: {e.strerror or e}") from None


# ---- the per-script pipeline (runs in a worker process) --------------------------------------

_GATE: Any = None  # the shared LLM semaphore of this worker's batch
_EVENTS: Any = None  # a multiprocessing queue of (index, stage) for the live display
_BACKENDS: dict[tuple[str, str | None, str | None], Any] = {}  # one backend per worker


def worker_backend(name: str, model: str | None, api_base: str | None) -> Any:
    """This process's image backend for (name, model, api_base), created once and reused, so
    a diffusers pipeline is loaded once per worker however many scripts it handles."""
    from .images import get_backend

    key = (name, model, api_base)
    if key not in _BACKENDS:
        _BACKENDS[key] = get_backend(name, model=model, api_base=api_base)
    return _BACKENDS[key]


def _init_worker(gate: Any, events: Any) -> None:
    # Ctrl-C goes to the whole process group: only the parent handles it (it stops the
    # workers); SIGTERM from the parent must end a worker at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _GATE, _EVENTS
    _GATE, _EVENTS = gate, events


def _work(task: Task) -> dict[str, Any]:
    def notify(stage: str) -> None:
        if _EVENTS is not None:
            with contextlib.suppress(Exception):
                _EVENTS.put((task.index, stage))

    return process(task, gate=_GATE, notify=notify)


def blank_result(task: Task) -> dict[str, Any]:
    return {"script": task.display, "project": task.project, "status": "failed", "error": None,
            "reason": None, "counts": {"character": 0, "location": 0, "prop": 0}, "assets": 0,
            "conflicts": 0, "images": 0, "images_failed": 0, "tokens": 0, "requests": 0,
            "cost_usd": 0.0, "stage": None, "exports": [], "warnings": [], "wall_s": 0.0}


def _fill_counts(res: dict[str, Any], project: Any) -> None:
    from .project import status

    st = status(project)
    a = st["assets"]
    res["counts"] = {t: a[t]["total"] for t in ("character", "location", "prop")}
    res["assets"] = st["total_assets"]
    res["conflicts"] = sum(a[t]["conflicts"] for t in a)
    res["images"] = sum(a[t]["with_image"] for t in a)
    res["stage"] = st["status"]


def _add_cost(res: dict[str, Any], cost: float | None) -> None:
    if cost is None or res["cost_usd"] is None:
        res["cost_usd"] = None
    else:
        res["cost_usd"] = round(res["cost_usd"] + cost, 6)


def process(task: Task, *, gate: Any = None,
            notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build one script's project from scratch; never raises (the error is in the result)."""
    from .db import close_all
    from .errors import describe_unexpected

    t0 = time.perf_counter()
    res = blank_result(task)
    say = notify or (lambda stage: None)
    opts = task.opts
    project = None
    root = Path(task.project)
    try:
        from . import jobs
        from .extraction import ExtractOptions
        from .extraction import run as extract
        from .locking import lock_all
        from .project import import_style, init_project, lock_style

        say("init")
        _clear(root)
        try:
            root.mkdir(parents=True)
        except OSError as e:
            raise UsageError(f"cannot create {root}: {e.strerror or e}") from None
        # claim the folder first: a run killed from here on leaves a folder a re-run rebuilds
        _write_atomic(root / MARKER, json.dumps({"version": MARKER_VERSION, "state": "building",
                                                 "script": task.script, "started_at": _now()}))
        project, _ = init_project(root)
        if task.style.file:
            import_style(project, Path(task.style.file))
        lock_style(project, task.style.id)
        say("extract")
        outcome = extract(project, Path(task.script), ExtractOptions(
            model=opts.model, api_base=opts.api_base, concurrency=opts.llm_concurrency,
            timeout=opts.timeout, gate=gate))
        st = outcome.stats
        res["tokens"] = int(st.get("input_tokens") or 0) + int(st.get("output_tokens") or 0)
        res["requests"] = int(st.get("requests") or 0)
        _add_cost(res, st.get("cost_usd", 0.0))
        res["warnings"] = list(outcome.failures)
        _fill_counts(res, project)
        if opts.generate:
            say("generate")
            backend = worker_backend(opts.backend, opts.image_model, opts.image_api_base)
            sel = jobs.select(project, [], all_=True, missing=False, retry_failed=False)
            plan = jobs.build_requests(project, sel.rows, backend=backend, steps=None, seed=None)
            gen = jobs.run(project, plan, command="batch generate")
            _add_cost(res, gen["cost_usd"])
            res["images_failed"] = len(gen["failed"])
            res["backend_loads"] = getattr(backend, "load_count", None)
            if gen["failed"]:
                first = gen["failed"][0]
                raise Stage5Error(f"{len(gen['failed'])} image(s) failed; first: "
                                  f"{first['asset']}: {first['error']}")
        if opts.lock:
            say("lock")
            # a batch run is unattended: --lock is the consent to lock with conflicts, unless
            # --strict makes them fail the script
            lock_all(project, strict=opts.strict, allow_placeholder=opts.allow_placeholder,
                     accept_conflicts=not opts.strict)
        _fill_counts(res, project)
        locked = res["stage"] == "locked"
        for fmt in opts.exports:
            say("export")
            from .export import write_export

            written = write_export(project, fmt=fmt, out=root / EXPORT_NAMES[fmt], draft=not locked)
            res["exports"].append(str(written))
        res["status"] = "ok"
    except Stage5Error as e:
        res["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - one script's bug must not stop the batch
        res["error"] = describe_unexpected(e)
    finally:
        if project is not None:
            with contextlib.suppress(Exception):
                project.db.conn.close()
        close_all()
    res["wall_s"] = round(time.perf_counter() - t0, 3)
    if res["status"] == "ok":
        marker = {"version": MARKER_VERSION, "state": "done", "script": task.script,
                  "script_sha256": task.sha256,
                  "style": task.style.id, "style_sha256": task.style.sha256,
                  "options_hash": task.options_hash, "finished_at": _now(), "result": res}
        try:
            _write_atomic(root / MARKER, json.dumps(marker, indent=2, ensure_ascii=False) + "\n")
        except Stage5Error as e:
            res.update(status="failed", error=str(e))
    return res


def _now() -> str:
    from .db import now

    return now()


# ---- the batch -------------------------------------------------------------------------------


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_options(opts: BatchOptions) -> None:
    """Bad usage, before anything runs (every problem is a one-line UsageError, exit 2)."""
    from .images import BACKENDS

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


def prepare(inputs: list[str], opts: BatchOptions) -> tuple[list[Task], Style]:
    """Validate everything and make one task per script (usage errors raise, exit 2)."""
    from .extraction import resolve_model

    opts.model = resolve_model(opts.model)
    opts.exports = tuple(dict.fromkeys(f.lower() for f in opts.exports))
    if opts.generate and opts.backend == "diffusers" and not opts.image_model:
        opts.image_model = os.environ.get("STAGE5_DIFFUSERS_MODEL") or None
    style = resolve_style(opts.style)  # before touching --out: an unknown style changes nothing
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    scripts = discover(inputs, exclude=out)
    check_options(opts)
    if opts.generate:  # bad backend options (one line) before any worker starts
        from .images import get_backend

        get_backend(opts.backend, model=opts.image_model, api_base=opts.image_api_base).check()
    names = project_names(scripts)
    ohash = options_hash(opts, style)
    tasks = [Task(index=i, script=str(s), display=_display(s), project=str(out / names[s]),
                  sha256=file_sha256(s), style=style, options_hash=ohash, opts=opts)
             for i, s in enumerate(scripts)]
    return tasks, style


def _emit(on_event: Event | None, **event: Any) -> None:
    if on_event is not None:
        on_event(event)


def _not_run(task: Task, error: str, status: str = "failed", reason: str | None = None) -> dict:
    res = blank_result(task)
    res.update(status=status, error=error, reason=reason)
    return res


def _terminate_workers(pool: Any) -> None:
    procs = getattr(pool, "_processes", None) or {}
    for p in list(procs.values()):
        with contextlib.suppress(Exception):
            p.terminate()
    for p in list(procs.values()):
        with contextlib.suppress(Exception):
            p.join(timeout=5)


def run_batch(inputs: list[str], opts: BatchOptions, *, on_event: Event | None = None) -> dict:
    """Run the batch and return the report. Usage problems raise UsageError before anything
    runs; per-script problems are in the report. Ctrl-C (or SIGTERM) stops the workers and
    returns the report with `interrupted: true` (the unfinished scripts `failed`)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    started_at, t0 = _now(), time.perf_counter()
    tasks, style = prepare(inputs, opts)
    results: dict[int, dict[str, Any]] = {}
    todo: list[Task] = []
    for t in tasks:
        done = None if opts.force else is_done(t)
        if done is not None:
            results[t.index] = {**blank_result(t), **done, "script": t.display,
                                "project": t.project, "status": "skipped", "error": None,
                                "reason": UP_TO_DATE, "wall_s": 0.0}
        else:
            todo.append(t)
    jobs = min(opts.jobs or default_jobs(), max(1, len(todo)))
    gate = None
    _emit(on_event, event="plan", tasks=[{"index": t.index, "script": t.display,
                                          "project": t.project} for t in tasks],
          to_run=len(todo), jobs=jobs)
    for i in sorted(results):
        _emit(on_event, event="result", index=i, result=results[i])
    interrupted = False
    failed_fast = None
    if todo:
        ctx = _mp_context()
        _warm(opts)
        if opts.model:
            gate = ctx.BoundedSemaphore(opts.llm_concurrency)
        events = ctx.Queue()
        old_term = _sigterm_as_interrupt()
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                   initargs=(gate, events))
        futures: dict[Any, Task] = {}
        try:
            for t in todo:
                futures[pool.submit(_work, t)] = t
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(events, on_event)
                for f in sorted(finished, key=lambda f: futures[f].index):
                    t = futures[f]
                    if f.cancelled():
                        res = _not_run(t, f"not run: --fail-fast stopped the batch after "
                                          f"{failed_fast} failed", status="skipped",
                                       reason="not run (--fail-fast)")
                    else:
                        try:
                            res = f.result()
                        except Exception as e:  # noqa: BLE001 - a worker died (killed, OOM)
                            res = _not_run(t, f"the worker process failed: {e.__class__.__name__}"
                                              f"{': ' + str(e) if str(e) else ''}")
                    results[t.index] = res
                    _emit(on_event, event="result", index=t.index, result=res)
                    if res["status"] == "failed" and opts.fail_fast and failed_fast is None:
                        failed_fast = t.display
                        for p in pending:
                            p.cancel()
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            interrupted = True
            for f in futures:
                f.cancel()
            for f, t in futures.items():  # finished just before the interrupt: keep them
                if t.index not in results and f.done() and not f.cancelled():
                    with contextlib.suppress(Exception):
                        results[t.index] = f.result(timeout=0)
                        _emit(on_event, event="result", index=t.index, result=results[t.index])
            _terminate_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)
        finally:
            _restore_sigterm(old_term)
            with contextlib.suppress(Exception):
                events.close()
                events.join_thread()
        for t in todo:
            if t.index not in results:
                results[t.index] = _not_run(t, INTERRUPTED)
                _emit(on_event, event="result", index=t.index, result=results[t.index])
    report = build_report([results[t.index] for t in tasks], opts, style,
                          started_at=started_at, wall_s=time.perf_counter() - t0, jobs=jobs)
    report["interrupted"] = interrupted
    return report


def _mp_context() -> Any:
    """fork where it is safe (Linux: workers start in milliseconds and share the modules the
    parent imported), the platform default elsewhere (spawn on macOS and Windows)."""
    import multiprocessing
    import sys

    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _forks() -> bool:
    return _mp_context().get_start_method() == "fork"


def _warm(opts: BatchOptions) -> None:
    """Import what every script needs once, in the parent, before the workers fork."""
    from . import extraction, jobs, locking, project  # noqa: F401

    if not opts.model:
        from .extract import builtin  # noqa: F401
    elif _forks():
        # litellm takes seconds to import and starts no thread doing it: once here, not
        # once per worker
        from .extract import llm  # noqa: F401
        from .extract.llmcall import _litellm

        _litellm()
    if opts.exports:
        from . import export  # noqa: F401
    if opts.generate and opts.backend == "placeholder":
        from PIL import Image, ImageDraw, ImageFont  # noqa: F401

        from .images import placeholder, png  # noqa: F401


def _drain(events: Any, on_event: Event | None) -> None:
    import queue

    while True:
        try:
            index, stage = events.get_nowait()
        except (queue.Empty, OSError, ValueError, EOFError):
            return
        _emit(on_event, event="stage", index=index, stage=stage)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> Any:
    """A CI runner cancels a job with SIGTERM: treat it like Ctrl-C (report, then exit)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        return None


def _restore_sigterm(old: Any) -> None:
    if old is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, old)


# ---- the report --------------------------------------------------------------------------------


def build_report(results: list[dict[str, Any]], opts: BatchOptions, style: Style, *,
                 started_at: str, wall_s: float, jobs: int) -> dict[str, Any]:
    totals: dict[str, Any] = {"scripts": len(results), "ok": 0, "failed": 0, "skipped": 0,
                              "assets": 0, "counts": {"character": 0, "location": 0, "prop": 0},
                              "conflicts": 0, "images": 0, "tokens": 0, "cost_usd": 0.0,
                              "wall_s": round(wall_s, 3), "script_wall_s": 0.0}
    for r in results:
        totals[r["status"]] += 1
        if r["status"] == "skipped":
            continue  # counted in the run that made them
        for k in ("assets", "conflicts", "images", "tokens"):
            totals[k] += r[k]
        for k, v in r["counts"].items():
            totals["counts"][k] = totals["counts"].get(k, 0) + v
        if r["cost_usd"] is None or totals["cost_usd"] is None:
            totals["cost_usd"] = None
        else:
            totals["cost_usd"] = round(totals["cost_usd"] + r["cost_usd"], 6)
        totals["script_wall_s"] = round(totals["script_wall_s"] + r["wall_s"], 3)
    return {
        "version": REPORT_VERSION,
        "started_at": started_at,
        "finished_at": _now(),
        "out": str(opts.out),
        "options": {"style": style.id, "style_file": style.file, "model": opts.model,
                    "extractor": "llm" if opts.model else "builtin", "generate": opts.generate,
                    "backend": opts.backend if opts.generate else None, "lock": opts.lock,
                    "strict": opts.strict, "allow_placeholder": opts.allow_placeholder,
                    "exports": list(opts.exports), "jobs": jobs,
                    "llm_concurrency": opts.llm_concurrency, "force": opts.force,
                    "fail_fast": opts.fail_fast},
        "interrupted": False,
        "scripts": results,
        "totals": totals,
    }


def exit_code(report: dict[str, Any]) -> int:
    """130 interrupted, 1 when any script failed, else 0 (ok and skipped)."""
    if report.get("interrupted"):
        return 130
    return 1 if report["totals"]["failed"] else 0


def write_report(report: dict[str, Any], path: Path) -> Path:
    return _write_atomic(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: Any) -> str:
    return _XML_BAD.sub("?", "" if text is None else str(text))


def junit_xml(report: dict[str, Any]) -> str:
    """JUnit XML: one testsuite, one testcase per script (failure / skipped elements)."""
    import xml.etree.ElementTree as ET

    t = report["totals"]
    attrs = {"name": "stage5 batch", "tests": str(t["scripts"]), "failures": str(t["failed"]),
             "errors": "0", "skipped": str(t["skipped"]), "time": f"{t['wall_s']:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {**attrs, "timestamp": report["started_at"]})
    props = ET.SubElement(suite, "properties")
    for k, v in report["options"].items():
        value = v if isinstance(v, str) else json.dumps(v)
        ET.SubElement(props, "property", {"name": k, "value": _x(value)})
    for r in report["scripts"]:
        case = ET.SubElement(suite, "testcase", {"classname": "stage5.batch", "name": _x(r["script"]),
                                                 "time": f"{r['wall_s']:.3f}"})
        summary = (f"project: {r['project']}\nassets: {r['assets']} ({r['counts']})\n"
                   f"conflicts: {r['conflicts']}\nimages: {r['images']}\ntokens: {r['tokens']}\n"
                   f"cost_usd: {r['cost_usd']}\nstage: {r['stage']}")
        if r["status"] == "failed":
            el = ET.SubElement(case, "failure", {"message": _x(r["error"]), "type": "failed"})
            el.text = _x(f"{r['error']}\n{summary}")
        elif r["status"] == "skipped":
            ET.SubElement(case, "skipped", {"message": _x(r.get("reason") or r.get("error"))})
        out = ET.SubElement(case, "system-out")
        out.text = _x(summary + "".join(f"\nwarning: {w}" for w in r.get("warnings") or []))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: dict[str, Any], path: Path) -> Path:
    return _write_atomic(path, junit_xml(report))


def check_output_file(path: Path | None, flag: str) -> None:
    """--report / --junit must name a file that can be written (checked before the run)."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is a file, not a folder")


__all__ = [
    "BatchOptions", "Task", "Style", "discover", "project_names", "safe_stem", "resolve_style",
    "options_hash", "prepare", "process", "run_batch", "build_report", "exit_code",
    "write_report", "junit_xml", "write_junit", "worker_backend", "check_options",
    "check_output_file",
]
