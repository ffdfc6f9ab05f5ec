"""The runner interface of a batch, shared by every engine: the events a runner emits, what
it returns (`RunOutcome`), the `Runner` protocol, and the pieces both runners use (a result
for a task that did not run; SIGTERM as Ctrl-C). `runner.LocalRunner` and
`ray_runner.RayRunner` implement it; `runner.run_batch` drives either."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from .options import BatchOptions, Task
from .worker import BatchResult, blank_result

INTERRUPTED = "interrupted"


# ---- events (what the progress display hears) -----------------------------------------------


@dataclass(frozen=True)
class PlanEvent:
    kind: ClassVar[str] = "plan"
    tasks: list[Task]
    to_run: int
    jobs: int


@dataclass(frozen=True)
class StageEvent:
    kind: ClassVar[str] = "stage"
    index: int
    stage: str  # init, extract, generate, lock, export


@dataclass(frozen=True)
class ResultEvent:
    kind: ClassVar[str] = "result"
    index: int
    result: BatchResult


BatchEvent = PlanEvent | StageEvent | ResultEvent
Event = Callable[[BatchEvent], None]


@dataclass
class RunOutcome:
    results: dict[int, BatchResult] = field(default_factory=dict)  # by Task.index: every task
    interrupted: bool = False


class Runner(Protocol):
    def concurrency(self, opts: BatchOptions, tasks: int) -> int:
        """How many scripts run at once for `tasks` tasks (in the plan and the report)."""
        ...

    def run(self, tasks: list[Task], opts: BatchOptions, on_event: Event) -> RunOutcome:
        """Run every task; on Ctrl-C/SIGTERM stop and return `interrupted`."""
        ...


def not_run(task: Task, error: str, status: str = "failed", reason: str | None = None) -> BatchResult:
    res = blank_result(task)
    res.status, res.error, res.reason = status, error, reason
    return res


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> Any:
    """A CI runner cancels a job with SIGTERM: treat it like Ctrl-C (report, then exit)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        return None


def restore_sigterm(old: Any) -> None:
    if old is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, old)
