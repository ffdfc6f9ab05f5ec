"""Running the tasks: `run_batch` plans (discovery, resume) and hands what is left to a
`Runner`. `LocalRunner` runs them in worker processes on this machine: LLM requests of all
workers share one semaphore (the gate), and each worker keeps one image backend instance, so
a diffusers pipeline is loaded once per worker, not once per script. Ctrl-C and SIGTERM stop
the workers; --fail-fast starts no new script after the first failure.

A runner on a distributed engine is one more class with the two methods of `Runner`: it runs
`worker.process` for each task, emits a StageEvent as stages start and a ResultEvent as each
script finishes, and gives every task a result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from stage5cli.errors import UsageError

from .base import (  # the runner interface (re-exported: stage5cli.batch.runner.Event ...)
    INTERRUPTED,
    BatchEvent,
    Event,
    PlanEvent,
    ResultEvent,
    Runner,
    RunOutcome,
    StageEvent,
    not_run,
    restore_sigterm,
    sigterm_as_interrupt,
)
from .discovery import discover, display, project_names
from .options import BatchOptions, Style, Task, check_options, default_jobs, resolve_style
from .report import BatchReport, build_report
from .state import UP_TO_DATE, OutLock, check_ours, file_sha256, is_done, now, options_hash
from .worker import BatchResult, blank_result, pipeline_options, process

__all__ = ["INTERRUPTED", "BatchEvent", "Event", "LocalRunner", "PlanEvent", "ResultEvent",
           "Runner", "RunOutcome", "StageEvent", "not_run", "prepare", "run_batch",
           "runner_for"]

# ---- planning --------------------------------------------------------------------------------


def prepare(inputs: list[str], opts: BatchOptions) -> tuple[list[Task], Style]:
    """Validate everything and make one task per script (usage errors raise, exit 2)."""
    from stage5cli.pipeline import resolve_model

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
        from stage5cli.images import get_backend

        get_backend(opts.backend, model=opts.image_model, api_base=opts.image_api_base).check()
    names = project_names(scripts)
    ohash = options_hash(opts, style)
    tasks = [Task(index=i, script=str(s), display=display(s), project=str(out / names[s]),
                  sha256=file_sha256(s), style=style, options_hash=ohash, opts=opts)
             for i, s in enumerate(scripts)]
    for t in tasks:  # a folder batch did not make (the user's own project): exit 2, untouched
        check_ours(Path(t.project))
    return tasks, style


def runner_for(opts: BatchOptions) -> Runner:
    """The runner of `opts.engine` (ray's module imports Ray only when it runs)."""
    if opts.engine == "ray":
        from .ray_runner import RayRunner

        return RayRunner()
    return LocalRunner()


def run_batch(inputs: list[str], opts: BatchOptions, *, on_event: Event | None = None,
              runner: Runner | None = None) -> BatchReport:
    """Run the batch and return the report. Usage problems raise UsageError before anything
    runs; per-script problems are in the report. Ctrl-C (or SIGTERM) stops the workers and
    returns the report with `interrupted: true` (the unfinished scripts `failed`)."""
    started_at, t0 = now(), time.perf_counter()
    emit = on_event or (lambda ev: None)
    runner = runner or runner_for(opts)
    tasks, style = prepare(inputs, opts)
    with OutLock(Path(opts.out)):
        return _run_locked(tasks, style, opts, emit, runner, started_at, t0)


def _run_locked(tasks: list[Task], style: Style, opts: BatchOptions, emit: Event, runner: Runner,
                started_at: str, t0: float) -> BatchReport:
    results: dict[int, BatchResult] = {}
    todo: list[Task] = []
    for t in tasks:
        done = None if opts.force else is_done(t)
        if done is not None:
            res = BatchResult.from_dict({**blank_result(t).to_dict(), **done})
            res.script, res.project, res.status = t.display, t.project, "skipped"
            res.error, res.reason, res.wall_s = None, UP_TO_DATE, 0.0
            results[t.index] = res
        else:
            todo.append(t)
    jobs = runner.concurrency(opts, len(todo))
    emit(PlanEvent(tasks=tasks, to_run=len(todo), jobs=jobs))
    for i in sorted(results):
        emit(ResultEvent(i, results[i]))
    interrupted = False
    if todo:
        outcome = runner.run(todo, opts, emit)
        results.update(outcome.results)
        interrupted = outcome.interrupted
    return build_report([results[t.index] for t in tasks], opts, style, started_at=started_at,
                        wall_s=time.perf_counter() - t0, jobs=jobs, interrupted=interrupted)


# ---- worker processes on this machine ----------------------------------------------------------

_GATE: Any = None  # the shared LLM semaphore of this worker's batch
_EVENTS: Any = None  # a multiprocessing queue of (index, stage) for the live display


def _init_worker(gate: Any, events: Any, parent: int | None = None) -> None:
    # Ctrl-C goes to the whole process group: only the parent handles it (it stops the
    # workers); SIGTERM from the parent must end a worker at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    global _GATE, _EVENTS
    _GATE, _EVENTS = gate, events


def _die_with_parent(parent: int | None) -> None:
    """A worker must not outlive the batch (a kill -9 of the parent): on Linux the kernel sends
    it SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere a thread watches for
    the parent to go."""
    import sys

    if parent is None:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGTERM, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
                if os.getppid() != parent:  # it died before the prctl
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="stage5-parent-watch", daemon=True).start()


def _work(task: Task) -> BatchResult:
    def notify(stage: str) -> None:
        if _EVENTS is not None:
            with contextlib.suppress(Exception):
                _EVENTS.put((task.index, stage))

    return process(task, gate=_GATE, notify=notify)


def _terminate_workers(pool: Any) -> None:
    procs = getattr(pool, "_processes", None) or {}
    for p in list(procs.values()):
        with contextlib.suppress(Exception):
            p.terminate()
    for p in list(procs.values()):
        with contextlib.suppress(Exception):
            p.join(timeout=5)


class LocalRunner:
    """A process pool on this machine: `--jobs` workers, one shared LLM cap."""

    def concurrency(self, opts: BatchOptions, tasks: int) -> int:
        return min(opts.jobs or default_jobs(), max(1, tasks))

    def run(self, tasks: list[Task], opts: BatchOptions, on_event: Event) -> RunOutcome:
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        from stage5cli.pipeline import preload

        out = RunOutcome()
        results = out.results
        failed_fast = None
        ctx = _mp_context()
        # import what every script needs once, in the parent, before the workers fork
        preload(pipeline_options(opts, tasks[0].style), llm=_forks())
        gate = ctx.BoundedSemaphore(opts.llm_concurrency) if opts.model else None
        events = ctx.Queue()
        old_term = sigterm_as_interrupt()
        pool = ProcessPoolExecutor(max_workers=self.concurrency(opts, len(tasks)), mp_context=ctx,
                                   initializer=_init_worker, initargs=(gate, events, os.getpid()))
        futures: dict[Any, Task] = {}
        try:
            for t in tasks:
                futures[pool.submit(_work, t)] = t
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(events, on_event)
                for f in sorted(finished, key=lambda f: futures[f].index):
                    t = futures[f]
                    if f.cancelled():
                        res = not_run(t, f"not run: --fail-fast stopped the batch after "
                                         f"{failed_fast} failed", status="skipped",
                                      reason="not run (--fail-fast)")
                    else:
                        try:
                            res = f.result()
                        except Exception as e:  # noqa: BLE001 - a worker died (killed, OOM)
                            res = not_run(t, f"the worker process failed: {e.__class__.__name__}"
                                             f"{': ' + str(e) if str(e) else ''}")
                    results[t.index] = res
                    on_event(ResultEvent(t.index, res))
                    if res.status == "failed" and opts.fail_fast and failed_fast is None:
                        failed_fast = t.display
                        for p in pending:
                            p.cancel()
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            out.interrupted = True
            for f in futures:
                f.cancel()
            for f, t in futures.items():  # finished just before the interrupt: keep them
                if t.index not in results and f.done() and not f.cancelled():
                    with contextlib.suppress(Exception):
                        results[t.index] = f.result(timeout=0)
                        on_event(ResultEvent(t.index, results[t.index]))
            _terminate_workers(pool)
            pool.shutdown(wait=False, cancel_futures=True)
        finally:
            restore_sigterm(old_term)
            with contextlib.suppress(Exception):
                events.close()
                events.join_thread()
        for t in tasks:
            if t.index not in results:
                results[t.index] = not_run(t, INTERRUPTED)
                on_event(ResultEvent(t.index, results[t.index]))
        return out


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


def _drain(events: Any, on_event: Event) -> None:
    import queue

    while True:
        try:
            index, stage = events.get_nowait()
        except (queue.Empty, OSError, ValueError, EOFError):
            return
        on_event(StageEvent(index, stage))
