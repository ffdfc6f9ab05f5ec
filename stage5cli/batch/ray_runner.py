"""`stage5 batch --engine ray`: one Ray task per script, cluster-wide caps held by one actor.

    report = run_batch(inputs, BatchOptions(..., engine="ray", ray_address=None))
    # or explicitly: run_batch(inputs, opts, runner=RayRunner())

`RayRunner` is the `Runner` of runner.py on Ray: each task runs `worker.process` (so
`pipeline.run`) in a Ray worker process and returns its BatchResult; the driver emits the
same StageEvent / ResultEvent as LocalRunner (base.py: the interface) and run_batch builds
the same report.

- Without an address a local Ray instance is started with num_cpus = --jobs (no dashboard,
  no usage statistics, worker output kept out of the terminal); with one (`auto`,
  `HOST:PORT`, `ray://HOST:PORT`) the driver connects to that cluster. Each script task asks
  for one CPU, and the driver keeps at most --jobs of them in flight.
- The caps: one `Caps` actor holds a counting semaphore per pool ("llm": --llm-concurrency
  requests in flight across every task on every node; "image": --image-concurrency image
  requests). A task's `Gate` acquires a slot around each request exactly where the local
  engine uses its multiprocessing semaphore (the same acquire(block, timeout) / release
  calls), so the extractor does not know which engine runs it. Slots are recorded per
  holder (one per script run): when a task's worker dies holding slots, the driver frees
  them, so a crash never shrinks the cap for the others.
- When the actor itself dies, every request that needs a slot fails with `CapsLost` (a
  Stage5Error: the script fails cleanly, its folder stays unfinished), and a re-run of the
  same command rebuilds exactly those scripts.
- Retries: a task whose worker died is retried by Ray only when rebuilding it is safe and
  free: built-in extractor, and no images or placeholder images (the rebuild starts from an
  empty folder and gives the same result). With an LLM or an image backend (money, GPU time,
  non-deterministic answers) max_retries is 0 and the report says the worker died.
- Storage: the driver checks that it can write --out (a probe file it creates and removes);
  each task checks that it sees that probe, so a node without the shared folder fails its
  script with a line that says so instead of writing projects nobody will find.

`import ray` happens only in this module's functions: `stage5 --help` never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stage5cli.errors import Stage5Error, UsageError

from . import options
from .base import (
    INTERRUPTED,
    Event,
    ResultEvent,
    RunOutcome,
    StageEvent,
    not_run,
    restore_sigterm,
    sigterm_as_interrupt,
)
from .options import BatchOptions, Task, default_jobs
from .worker import BatchResult

RAY_VERSION = "2.60.0"  # the release the `ray` extra pins (see pyproject.toml)
PROBE_PREFIX = ".stage5-ray-probe-"
LOCAL_OBJECT_STORE = 256 * 1024 * 1024  # bytes: tasks pass small dicts, never images
CONNECT_TIMEOUT_S = 5.0  # --ray-address must accept a connection within this
RAY_CLIENT_PORT = 10001  # Ray Client's default (ray://HOST)
POLL_S = 0.1  # how often the driver looks for finished tasks and stage events
CAPS_START_TIMEOUT_S = 120.0  # creating the rate-limiter actor (see start_caps)
ACQUIRE_RPC_GRACE_S = 30.0  # a slot request the actor does not answer by then: the actor is gone
# settings a task takes from the driver's environment (never a credential: keys stay where
# they are, in each node's environment)
PASSED_ENV = ("STAGE5_HOME", "STAGE5_DIFFUSERS_MODEL", "STAGE5_DEBUG",
              "LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE")


class CapsLost(Stage5Error):
    """The cluster-wide rate limiter (a Ray actor) is gone."""


def import_ray() -> Any:
    """The ray module, or one UsageError line naming the extra to install."""
    return options.import_ray()


# ---- the caps actor (plain Python: the class is wrapped with ray.remote at run time) --------


class Caps:
    """Counting semaphores by pool name; cap None means no limit (still counted).

    Async methods: Ray runs it as an async actor, so a thousand tasks can wait for a slot
    at once without a thread each. Every acquire waits at most `timeout` seconds on the
    actor and answers True (a slot is the caller's) or False (try again): the caller's own
    wait is always settled, a slot is never granted to a request nobody waits for."""

    def __init__(self, caps: dict[str, int | None]):
        self.caps = dict(caps)
        self.used = dict.fromkeys(caps, 0)
        self.peak = dict.fromkeys(caps, 0)
        self.granted = dict.fromkeys(caps, 0)
        self.held: dict[tuple[str, str], int] = {}
        self.events: list[dict[str, Any]] = []
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # made on the actor's event loop
            self._cond = asyncio.Condition()
        return self._cond

    def _pool(self, pool: str) -> None:
        if pool not in self.caps:
            raise KeyError(f"unknown pool {pool!r}")

    def _free(self, pool: str) -> bool:
        cap = self.caps[pool]
        return cap is None or self.used[pool] < cap

    async def acquire(self, pool: str, holder: str, timeout: float | None = None) -> bool:
        self._pool(pool)
        cond = self._condition()
        async with cond:
            if not self._free(pool):
                if timeout is not None and timeout <= 0:
                    return False
                try:
                    await asyncio.wait_for(cond.wait_for(lambda: self._free(pool)), timeout)
                except TimeoutError:
                    return False
            self.used[pool] += 1
            self.granted[pool] += 1
            self.peak[pool] = max(self.peak[pool], self.used[pool])
            self.held[(pool, holder)] = self.held.get((pool, holder), 0) + 1
            return True

    async def release(self, pool: str, holder: str) -> bool:
        """False when `holder` held no slot of `pool` (a release never frees another's slot)."""
        self._pool(pool)
        cond = self._condition()
        async with cond:
            n = self.held.get((pool, holder), 0)
            if n <= 0:
                return False
            if n == 1:
                del self.held[(pool, holder)]
            else:
                self.held[(pool, holder)] = n - 1
            self.used[pool] -= 1
            cond.notify_all()
            return True

    async def release_holder(self, holder: str) -> int:
        """Free every slot `holder` still has (its worker died); how many there were."""
        cond = self._condition()
        async with cond:
            freed = 0
            for key in [k for k in self.held if k[1] == holder]:
                n = self.held.pop(key)
                self.used[key[0]] -= n
                freed += n
            if freed:
                cond.notify_all()
            return freed

    def stats(self) -> dict[str, dict[str, Any]]:
        return {p: {"cap": self.caps[p], "in_use": self.used[p], "peak": self.peak[p],
                    "granted": self.granted[p]} for p in self.caps}

    def note(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        out, self.events = self.events, []
        return out


def _caps_actor_class(ray: Any) -> Any:
    # max_restarts=0: a restarted actor would start with empty counts while tasks still
    # hold slots of the old one; better to fail those requests and let resume redo them.
    return ray.remote(num_cpus=0, max_restarts=0, max_concurrency=10_000)(Caps)


def start_caps(caps: dict[str, int | None], timeout: float = CAPS_START_TIMEOUT_S) -> Any:
    """A new Caps actor on the connected cluster (it lives as long as this driver), answering.

    Creating it exports the class through the cluster's control store (GCS), a blocking call
    inside Ray that once never returned on a local instance whose earlier actors and workers
    had been killed: it runs in a daemon thread waited on for `timeout` seconds, and the actor
    must answer within the same time, or the batch stops with one line (CapsLost, exit 1)
    before any script ran, instead of hanging forever."""
    import threading

    ray = import_ray()
    box: dict[str, Any] = {}

    def create() -> None:
        try:
            box["actor"] = _caps_actor_class(ray).remote(caps)
        except BaseException as e:  # handed to the caller's thread below
            box["error"] = e

    creator = threading.Thread(target=create, name="stage5-ray-caps", daemon=True)
    creator.start()
    creator.join(timeout)
    lost = (f"Ray did not start the batch's rate limiter (an actor) within {timeout:g} s: the "
            "cluster's control store is not answering; nothing was run (check `ray status`)")
    if creator.is_alive():
        raise CapsLost(lost)
    if "error" in box:
        raise box["error"]
    try:
        ray.get(box["actor"].stats.remote(), timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise CapsLost(lost) from None
    return box["actor"]


# ---- the gate a task uses around each request ------------------------------------------------


@dataclass
class Gate:
    """acquire/release like multiprocessing's semaphore, backed by the Caps actor.

    `acquire(True, 0.2)` is what extract/llmcall.py calls in a loop; `with gate:` holds one
    slot for a block. Any failure to reach the actor raises CapsLost (one line)."""

    actor: Any
    pool: str
    holder: str
    rpc_grace: float = ACQUIRE_RPC_GRACE_S

    def _call(self, method: str, *args: Any, wait: float) -> Any:
        ray = import_ray()
        try:
            return ray.get(getattr(self.actor, method).remote(*args), timeout=wait)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError,
                ray.exceptions.RaySystemError) as e:
            raise CapsLost(f"the cluster-wide {self.pool} rate limiter (a Ray actor) is gone "
                           f"({e.__class__.__name__}); run the same command again to redo the "
                           f"unfinished scripts") from None

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        if not block:
            timeout = 0.0
        return bool(self._call("acquire", self.pool, self.holder, timeout,
                               wait=(timeout or 0.0) + self.rpc_grace if timeout is not None
                               else None))

    def release(self) -> None:
        self._call("release", self.pool, self.holder, wait=self.rpc_grace)

    def __enter__(self) -> Gate:
        self.acquire(True, None)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextlib.contextmanager
def slot(gate: Any) -> Iterator[None]:
    """Hold one slot of `gate` (a Gate, a multiprocessing semaphore, or None: no cap)."""
    if gate is None:
        yield
        return
    gate.acquire(True, None)
    try:
        yield
    finally:
        gate.release()


class GatedBackend:
    """An image backend whose every request holds one slot of the image pool."""

    def __init__(self, inner: Any, gate: Any = None):
        self._inner = inner
        self.gate = gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate(self, requests: list[Any]) -> Iterator[Any]:
        for req in requests:
            with slot(self.gate):
                results = list(self._inner.generate([req]))
            yield from results


# ---- the task (runs in a Ray worker process) --------------------------------------------------


@dataclass
class TaskContext:
    """What the driver sends with every script besides the task itself."""

    caps: Any  # the Caps actor handle
    holder: str  # this script run's id at the actor
    probe: str  # the file under --out the driver created: this node must see it
    env: dict[str, str] = field(default_factory=dict)
    llm_capped: bool = True
    image_capped: bool = False


def probe_visible(probe: str) -> bool:
    return Path(probe).is_file()


def _note(ctx: TaskContext, index: int, stage: str) -> None:
    with contextlib.suppress(Exception):  # the display is best effort
        ctx.caps.note.remote({"index": index, "stage": stage, "pid": os.getpid(),
                              "node": socket.gethostname()})


def run_script(task: Task, ctx: TaskContext) -> BatchResult:
    """The body of one Ray task: check storage, wire the gates, run the pipeline."""
    from . import worker

    os.environ.update(ctx.env)
    _note(ctx, task.index, "start")
    if not probe_visible(ctx.probe):
        res = worker.blank_result(task)
        res.error = (f"--out is not visible on node {socket.gethostname()} (no "
                     f"{Path(ctx.probe).name} in {Path(ctx.probe).parent}): on a multi-node "
                     f"cluster --out must be a folder every node mounts at the same path")
        return res
    llm_gate = Gate(ctx.caps, "llm", ctx.holder) if ctx.llm_capped else None
    if ctx.image_capped and task.opts.generate:
        o = task.opts
        key = (o.backend, o.image_model, o.image_api_base)
        inner = worker.worker_backend(*key)
        if not isinstance(inner, GatedBackend):  # one instance per worker, as on local
            inner = GatedBackend(inner)
            worker._BACKENDS[key] = inner
        inner.gate = Gate(ctx.caps, "image", ctx.holder)
    return worker.process(task, gate=llm_gate,
                          notify=lambda stage: _note(ctx, task.index, stage))


def retry_safe(opts: Any) -> bool:
    """A script Ray may run again after its worker died: the rebuild is free and gives the
    same project (built-in extractor; no images, or placeholder images)."""
    return not opts.model and (not opts.generate or opts.backend == "placeholder")


# ---- starting / connecting -----------------------------------------------------------------


def connect(address: str | None, jobs: int) -> bool:
    """Connect to `address`, or start a local instance with `jobs` CPUs; True when this call
    started (and so must stop) Ray. An already connected driver (a test, a notebook) is
    reused as it is. A local instance listens on the loopback address only."""
    ray = import_ray()
    if address:
        check_reachable(address)
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network but the user's endpoint
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            with _loopback_only():  # "local": a new instance, never some other one found here
                ray.init(address="local", num_cpus=jobs, include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE, **common)
    except Exception as e:  # noqa: BLE001 - every way of not getting a cluster is one line
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0]
        raise UsageError(f"cannot start or reach {where}: {first}") from None
    return True


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A HOST:PORT or ray://HOST[:PORT] that accepts no connection is one line at once (Ray
    itself retries for minutes). `auto` is Ray's to resolve ($RAY_ADDRESS, or the cluster
    `ray start` made on this machine)."""
    if address == "auto":
        return
    scheme, sep, target = address.partition("://")
    if not sep:
        scheme, target = "", address
    host, colon, port = target.rstrip("/").rpartition(":")
    if not colon and scheme == "ray":
        host, port = target.rstrip("/"), str(RAY_CLIENT_PORT)
    if scheme not in ("", "ray") or not host or not port.isdigit():
        raise UsageError(f"--ray-address {address}: use auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise UsageError(f"cannot reach the Ray cluster at {address}: "
                         f"{e.strerror or e.__class__.__name__}") from None


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Ray binds a node to the machine's network address unless clusters are switched off
    (its setting for laptops): a single-machine instance needs no more than 127.0.0.1. The
    processes it starts inherit the setting; this process gets its own back afterwards."""
    from ray._private import ray_constants

    name = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    old_env, old_flag = os.environ.get(name), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[name], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old_env


def cluster_cpus() -> int:
    ray = import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def make_probe(out: Path) -> Path:
    """Create OUT/.stage5-ray-probe-<id> (proof the driver can write --out; tasks look for it)."""
    probe = Path(out).resolve() / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        probe.write_text(f"stage5 batch driver on {socket.gethostname()}\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write to --out {out}: {e.strerror or e}") from None
    return probe


def passed_env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASSED_ENV if k in os.environ}


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def describe_task_error(e: BaseException) -> str:
    """One line for a task that returned no result (its worker or node died, it was cancelled)."""
    ray = import_ray()
    rex = ray.exceptions
    if isinstance(e, rex.TaskCancelledError):
        return "cancelled"
    if isinstance(e, rex.WorkerCrashedError):
        what = "the Ray worker process running it died"
    elif isinstance(e, getattr(rex, "NodeDiedError", ())):
        what = "the Ray node running it was lost"
    elif isinstance(e, getattr(rex, "OutOfMemoryError", ())):
        what = "Ray stopped its worker (out of memory)"
    elif isinstance(e, rex.RayTaskError):
        what = f"the Ray task failed: {_first_line(e)}"
    else:
        what = f"the Ray task failed: {e.__class__.__name__}"
        if _first_line(e):
            what += f": {_first_line(e)}"
    return f"{what}; run the same command again to redo it"


# ---- the runner ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteStageEvent(StageEvent):
    """A StageEvent that also says which worker process (on which node) runs the script."""

    pid: int | None = None
    node: str | None = None


def _local_paths(res: BatchResult, task: Task, ran_at: str) -> BatchResult:
    """The report shows the project (and its exports) as the user gave --out, as local does;
    the worker ran with the absolute path every node shares."""
    res.project = task.project
    res.exports = [task.project + e[len(ran_at):] if e.startswith(ran_at) else e
                   for e in res.exports]
    return res


class RayRunner:
    """The batch on Ray. Without `address` (and without a Ray already connected in this
    process) it starts a local instance with --jobs CPUs and stops it at the end."""

    def __init__(self, address: str | None = None):
        self.address = address
        self.started = False
        self.caps: Any = None
        self.last_stats: dict[str, dict[str, Any]] | None = None  # the caps' counts at the end
        self.probe: Path | None = None  # OUT/.stage5-ray-probe-<id> while a batch runs

    def _address(self, opts: BatchOptions) -> str | None:
        return self.address or opts.ray_address

    def concurrency(self, opts: BatchOptions, tasks: int) -> int:
        """Scripts in flight at once. With tasks to run it also connects (or starts the local
        instance) and checks --out, so that a cluster that cannot be reached or an --out the
        driver cannot write is one line before the plan is shown."""
        if tasks <= 0:
            return 1  # nothing to run: no cluster needed
        self._start(opts)
        if opts.jobs:
            return min(opts.jobs, tasks)
        if self._address(opts):  # a cluster: as many scripts as it has CPUs
            return min(cluster_cpus(), tasks)
        return min(default_jobs(), tasks)

    def _start(self, opts: BatchOptions) -> None:
        import_ray()
        if self.probe is None:
            started = connect(self._address(opts), opts.jobs or default_jobs())
            self.started = self.started or started
            try:
                self.probe = make_probe(Path(opts.out))
            except UsageError:
                self._close()
                raise

    def _close(self) -> None:
        ray = import_ray()
        with contextlib.suppress(Exception):
            if self.caps is not None:
                ray.kill(self.caps)
        self.caps = None
        if self.probe is not None:
            with contextlib.suppress(OSError):
                self.probe.unlink()
            self.probe = None
        if self.started:
            with contextlib.suppress(Exception):
                ray.shutdown()
            self.started = False

    def stats(self) -> dict[str, dict[str, Any]]:
        ray = import_ray()
        return ray.get(self.caps.stats.remote(), timeout=ACQUIRE_RPC_GRACE_S)

    def _drain(self, on_event: Event) -> None:
        ray = import_ray()
        try:
            events = ray.get(self.caps.drain.remote(), timeout=ACQUIRE_RPC_GRACE_S)
        except Exception:  # noqa: BLE001 - the actor is gone: the tasks say so themselves
            return
        for ev in events:
            on_event(RemoteStageEvent(ev["index"], ev["stage"], pid=ev.get("pid"),
                                      node=ev.get("node")))

    def run(self, tasks: list[Task], opts: BatchOptions, on_event: Event) -> RunOutcome:
        try:
            self._start(opts)
            self.caps = start_caps({"llm": opts.llm_concurrency if opts.model else None,
                                    "image": opts.image_concurrency})
            return self._run(tasks, opts, on_event)
        finally:
            with contextlib.suppress(Exception):
                self.last_stats = self.stats()
            self._close()

    def _run(self, tasks: list[Task], opts: BatchOptions, on_event: Event) -> RunOutcome:
        ray = import_ray()
        probe = self.probe
        retries = 1 if retry_safe(opts) else 0
        remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(run_script)
        env = passed_env()
        out = RunOutcome()
        results = out.results
        queue = list(tasks)
        running: dict[Any, tuple[Task, str, str]] = {}  # ref -> (task, holder, absolute project)
        limit = self.concurrency(opts, len(tasks))
        failed_fast: str | None = None

        def submit(t: Task) -> None:
            holder = f"{t.index}:{uuid.uuid4().hex[:12]}"
            ran_at = str(Path(t.project).resolve())
            ctx = TaskContext(caps=self.caps, holder=holder, probe=str(probe), env=env,
                              llm_capped=bool(opts.model),
                              image_capped=opts.image_concurrency is not None)
            running[remote.remote(replace(t, project=ran_at), ctx)] = (t, holder, ran_at)

        def free(holder: str) -> None:
            with contextlib.suppress(Exception):  # a dead worker's slots go back to the others
                ray.get(self.caps.release_holder.remote(holder), timeout=ACQUIRE_RPC_GRACE_S)

        def finish(ref: Any) -> None:
            nonlocal failed_fast
            t, holder, ran_at = running.pop(ref)
            try:
                res = _local_paths(ray.get(ref), t, ran_at)
            except Exception as e:  # noqa: BLE001 - the worker or its node died
                res = not_run(t, describe_task_error(e))
            free(holder)
            results[t.index] = res
            on_event(ResultEvent(t.index, res))
            if res.status == "failed" and opts.fail_fast and failed_fast is None:
                failed_fast = t.display

        old_term = sigterm_as_interrupt()
        try:
            while queue or running:
                while queue and failed_fast is None and len(running) < limit:
                    submit(queue.pop(0))
                if not running:
                    break
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_S)
                self._drain(on_event)
                for ref in sorted(ready, key=lambda r: running[r][0].index):
                    finish(ref)
            for t in queue:  # --fail-fast: never submitted
                results[t.index] = not_run(t, f"not run: --fail-fast stopped the batch after "
                                              f"{failed_fast} failed", status="skipped",
                                           reason="not run (--fail-fast)")
                on_event(ResultEvent(t.index, results[t.index]))
        except KeyboardInterrupt:
            out.interrupted = True
            for ref in list(running):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            for ref, (t, holder, ran_at) in list(running.items()):
                with contextlib.suppress(Exception):  # finished just before: keep it
                    done, _ = ray.wait([ref], timeout=2)
                    if done:
                        results[t.index] = _local_paths(ray.get(ref), t, ran_at)
                        on_event(ResultEvent(t.index, results[t.index]))
                free(holder)
        finally:
            restore_sigterm(old_term)
        for t in tasks:
            if t.index not in results:
                results[t.index] = not_run(t, INTERRUPTED)
                on_event(ResultEvent(t.index, results[t.index]))
        return out


__all__ = ["Caps", "CapsLost", "Gate", "GatedBackend", "RayRunner", "RemoteStageEvent",
           "TaskContext", "connect",
           "describe_task_error", "import_ray", "make_probe", "retry_safe", "run_script",
           "slot", "RAY_VERSION"]
