"""`stage5 batch --engine ray`: the caps actor (a distributed semaphore), the gates tasks use
around each request, and the engine on a local Ray instance (started here, num_cpus=2)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from stage5cli import batch_ray as br
from stage5cli.errors import UsageError

try:
    import ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False

needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="the ray extra is not installed "
                               "(pip install 'stage5[ray]'; make test installs it)")


# ---- the semaphore logic itself (plain asyncio, no Ray) ---------------------------------------


def test_caps_bound_count_and_free_a_dead_holder():
    async def scenario():
        caps = br.Caps({"llm": 2, "image": None})
        assert await caps.acquire("llm", "a", 0.1)
        assert await caps.acquire("llm", "b", 0.1)
        assert not await caps.acquire("llm", "c", 0.05)  # full: the wait times out
        waiter = asyncio.ensure_future(caps.acquire("llm", "c", 5))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        assert not await caps.release("llm", "c")  # c holds nothing: frees nobody's slot
        assert await caps.release("llm", "a")
        assert await waiter  # the freed slot went to the waiter
        assert await caps.acquire("llm", "b", 0) is False
        assert await caps.release_holder("b") == 1  # b's worker died holding one slot
        assert await caps.acquire("llm", "d", 0)
        for _ in range(5):  # no cap: always granted, still counted
            assert await caps.acquire("image", "x", 0)
        return caps.stats()

    st = asyncio.run(scenario())
    assert st["llm"] == {"cap": 2, "in_use": 2, "peak": 2, "granted": 4}
    assert st["image"]["peak"] == 5 and st["image"]["cap"] is None


def test_caps_unknown_pool_and_events():
    caps = br.Caps({"llm": 1})
    with pytest.raises(KeyError):
        asyncio.run(caps.acquire("gpu", "a", 0))
    caps.note({"index": 0, "stage": "init"})
    assert caps.drain() == [{"index": 0, "stage": "init"}] and caps.drain() == []


def test_gated_backend_holds_one_slot_per_request():
    seen: list[int] = []

    class Sem:
        def __init__(self):
            self.held = 0

        def acquire(self, block=True, timeout=None):
            self.held += 1
            return True

        def release(self):
            self.held -= 1

    sem = Sem()

    class Inner:
        backend_id = "fake"

        def generate(self, requests):
            for r in requests:
                seen.append(sem.held)
                yield r * 10

    g = br.GatedBackend(Inner(), sem)
    assert g.backend_id == "fake"  # everything else is the inner backend's
    assert list(g.generate([1, 2, 3])) == [10, 20, 30]
    assert seen == [1, 1, 1] and sem.held == 0
    lock = threading.BoundedSemaphore(1)  # multiprocessing-style semaphores work too
    with br.slot(lock):
        assert not lock.acquire(False)
    assert lock.acquire(False)


def test_retries_only_where_a_rebuild_is_free_and_the_same():
    from stage5cli.batch import BatchOptions

    def o(**kw):
        return BatchOptions(style="film-noir", out=".", **kw)

    assert br.retry_safe(o())
    assert br.retry_safe(o(generate=True))
    assert not br.retry_safe(o(model="openai/x"))
    assert not br.retry_safe(o(generate=True, backend="api"))
    assert not br.retry_safe(o(generate=True, backend="diffusers"))


def test_missing_ray_is_one_usage_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UsageError, match=r"pip install 'stage5\[ray\]'"):
        br.import_ray()


def test_probe_proves_the_driver_can_write_out(tmp_path):
    probe = br.make_probe(tmp_path)
    assert br.probe_visible(str(probe)) and probe.parent == tmp_path.resolve()
    probe.unlink()
    assert not br.probe_visible(str(probe))
    with pytest.raises(UsageError, match="cannot write to --out"):
        br.make_probe(tmp_path / "missing" / "deeper")


# ---- on a local Ray instance (slow: Ray takes seconds to start) --------------------------------


@pytest.fixture(scope="module")
def ray_local():
    if not HAVE_RAY:
        pytest.skip("the ray extra is not installed (pip install 'stage5[ray]')")
    import ray

    started = br.connect(None, 2)
    yield ray
    if started:
        ray.shutdown()


def _hammer(caps, holder: str, n: int, hold_s: float) -> int:
    import time

    g = br.Gate(caps, "llm", holder)
    for _ in range(n):
        while not g.acquire(True, 0.2):
            pass
        time.sleep(hold_s)
        g.release()
    return os.getpid()


def _grab_and_die(caps, holder: str) -> None:
    g = br.Gate(caps, "llm", holder)
    assert g.acquire(True, 5) and g.acquire(True, 5)
    os._exit(1)  # the worker dies holding two slots


@needs_ray
@pytest.mark.slow
def test_one_cap_across_ray_tasks_a_dead_task_frees_its_slots_and_a_dead_actor_fails_cleanly(ray_local):
    ray = ray_local
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")  # loopback only
    caps = br.start_caps({"llm": 1, "image": None})
    hammer = ray.remote(num_cpus=1, max_retries=0)(_hammer)
    pids = ray.get([hammer.remote(caps, f"h{i}", 4, 0.05) for i in range(3)])
    st = ray.get(caps.stats.remote())["llm"]
    assert st["granted"] == 12 and st["peak"] == 1 and st["in_use"] == 0
    assert len(pids) == 3
    die = ray.remote(num_cpus=1, max_retries=0)(_grab_and_die)
    caps2 = br.start_caps({"llm": 2})
    with pytest.raises(ray.exceptions.WorkerCrashedError) as crash:
        ray.get(die.remote(caps2, "dead"))
    assert br.describe_task_error(crash.value).startswith("the Ray worker process running it died")
    assert ray.get(caps2.stats.remote())["llm"]["in_use"] == 2  # leaked until the driver frees
    assert ray.get(caps2.release_holder.remote("dead")) == 2
    assert ray.get(hammer.remote(caps2, "next", 2, 0.0))  # the cap is whole again
    ray.kill(caps2)
    with pytest.raises(br.CapsLost, match="run the same command again"):
        br.Gate(caps2, "llm", "late").acquire(True, 0.2)
