"""`stage5 batch --engine ray`: the caps actor (a distributed semaphore), the gates tasks use
around each request, and the engine on a local Ray instance (started here, num_cpus=2)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stage5cli import batch as b
from stage5cli.batch import ray_runner as br
from stage5cli.errors import UsageError
from tests.conftest import one_line_error

REPO = Path(__file__).resolve().parents[1]
TINY = """Title: {title}

INT. KITCHEN - NIGHT

ANNA PARK, 30s, in a green raincoat, turns a brass KEY in her fingers.

ANNA
Where does this one go?

EXT. GARDEN - DAY

BEN, 40s, waits by the iron gate with a LANTERN.
"""


def script(path: Path, title: str = "Tiny") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TINY.format(title=title), encoding="utf-8")
    return path

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
    def o(**kw):
        return b.BatchOptions(style="film-noir", out=".", **kw)

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


@pytest.fixture()
def ray_local():
    """A fresh local Ray instance per test: these tests kill workers and actors, and a later
    test on the same instance once hung in Ray's own GCS call while exporting an actor class
    (a CI run stuck for 20 minutes); a few seconds of start-up per test buys isolation."""
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
    deadline = time.monotonic() + 60  # ray.kill is asynchronous: wait until the actor is gone
    while time.monotonic() < deadline:
        try:
            ray.get(caps2.stats.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            break
        except ray.exceptions.GetTimeoutError:
            pass
        time.sleep(0.05)
    with pytest.raises(br.CapsLost, match="run the same command again"):
        br.Gate(caps2, "llm", "late").acquire(True, 0.2)


def test_a_node_that_does_not_see_out_fails_its_script_with_the_storage_rule(tmp_path):
    opts = b.BatchOptions(style="film-noir", out=tmp_path / "out")
    task = b.Task(index=0, script=str(script(tmp_path / "a.fountain")), display="a.fountain",
                  project=str(tmp_path / "out" / "a"), sha256=None,
                  style=b.Style(id="film-noir", sha256="x"), options_hash="h", opts=opts)
    ctx = br.TaskContext(caps=None, holder="0:x", probe=str(tmp_path / "out" / ".probe-gone"))
    res = br.run_script(task, ctx)
    assert res.status == "failed" and "every node mounts at the same path" in res.error
    assert not (tmp_path / "out" / "a").exists()  # nothing written where nobody will look


@pytest.mark.parametrize("extra, needle", [
    (["--engine", "spark"], "unknown engine"),
    (["--ray-address", "auto"], "--ray-address needs --engine ray"),
    (["--image-concurrency", "2"], "--image-concurrency needs --engine ray"),
    (["--engine", "ray", "--image-concurrency", "0"], "--image-concurrency must be at least 1"),
])
def test_bad_engine_usage_exits_2(cli, tmp_path, extra, needle):
    script(tmp_path / "in" / "a.fountain")
    r = cli("batch", tmp_path / "in", "--style", "film-noir", "--out", tmp_path / "out", *extra,
            env={"CI": "true"})
    assert r.exit_code == 2
    assert needle in one_line_error(r)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once it is closed


@needs_ray
@pytest.mark.parametrize("address, needle", [
    ("http://127.0.0.1:8265", "use auto, HOST:PORT or ray://HOST:PORT"),
    ("127.0.0.1:{port}", "cannot reach the Ray cluster at 127.0.0.1:"),
])
def test_a_cluster_that_cannot_be_reached_is_one_line_at_once(cli, tmp_path, address, needle):
    script(tmp_path / "in" / "a.fountain")
    r = cli("batch", tmp_path / "in", "--style", "film-noir", "--out", tmp_path / "out",
            "--engine", "ray", "--jobs", "1", "--ray-address",
            address.format(port=_closed_port()), env={"CI": "true"})
    assert r.exit_code == 2
    assert needle in one_line_error(r)  # before the plan line: nothing ran
    assert not (tmp_path / "out" / "a").exists()
    assert not list((tmp_path / "out").glob(br.PROBE_PREFIX + "*"))


def test_engine_ray_without_ray_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    script(tmp_path / "in" / "a.fountain")
    r = cli("batch", tmp_path / "in", "--style", "film-noir", "--out", tmp_path / "out",
            "--engine", "ray", env={"CI": "true"})
    assert r.exit_code == 2
    assert "pip install 'stage5[ray]'" in one_line_error(r)


# ---- the batch on the local Ray instance ----------------------------------------------------------


def _inputs(folder: Path) -> Path:
    script(folder / "good_one.fountain", "One")
    script(folder / "good_two.fountain", "Two")
    (folder / "night_ferry.fdx").write_bytes((REPO / "examples" / "scripts" /
                                              "the_night_ferry.fdx").read_bytes())
    (folder / "binary.fountain").write_bytes(b"\x00\x01\x02PNG\x00" * 50)  # fails alone
    return folder


TIMING = {"started_at", "finished_at", "wall_s", "script_wall_s"}


def _comparable(report: dict, out: Path) -> dict:
    """The report without timings and the engine, with the output folder as OUT."""
    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items() if k not in TIMING}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x.replace(str(out), "OUT") if isinstance(x, str) else x

    rep = walk(report)
    rep["options"].pop("engine")
    return rep


def _junit_comparable(path: Path, out: Path) -> str:
    root = ET.parse(path).getroot()
    for el in root.iter():
        for k in ("time", "timestamp"):
            el.attrib.pop(k, None)
        if el.tag == "properties":
            for p in [p for p in el if p.get("name") == "engine"]:
                el.remove(p)
        if el.text:
            el.text = el.text.replace(str(out), "OUT")
    return ET.tostring(root, encoding="unicode")


@needs_ray
@pytest.mark.slow
def test_local_and_ray_give_the_same_projects_and_reports(ray_local, tmp_path):
    ins = _inputs(tmp_path / "in")
    reports = {}
    runner = br.RayRunner()
    for engine in ("local", "ray"):
        out = tmp_path / f"out-{engine}"
        opts = b.BatchOptions(style="film-noir", out=out, generate=True, lock=True,
                              allow_placeholder=True, exports=("json", "html"), jobs=2,
                              engine=engine,
                              image_concurrency=1 if engine == "ray" else None)
        rep = b.run_batch([str(ins)], opts, runner=runner if engine == "ray" else None)
        assert b.exit_code(rep) == 1  # the binary script
        b.write_junit(rep, tmp_path / f"{engine}.xml")
        reports[engine] = (rep.to_dict(), out)
    (local, lout), (ray, rout) = reports["local"], reports["ray"]
    assert ray["options"]["engine"] == "ray" and local["options"]["engine"] == "local"
    assert _comparable(ray, rout) == _comparable(local, lout)
    assert _junit_comparable(tmp_path / "ray.xml", rout) == _junit_comparable(
        tmp_path / "local.xml", lout)
    s = {Path(r["script"]).name: r for r in ray["scripts"]}
    assert s["binary.fountain"]["status"] == "failed" and "binary" in s["binary.fountain"]["error"]
    assert s["good_one.fountain"]["stage"] == "locked" and s["night_ferry.fdx"]["status"] == "ok"
    assert s["good_one.fountain"]["images"] == s["good_one.fountain"]["assets"] > 0
    for r in ray["scripts"]:  # the exports are where the report says, relative to the same cwd
        assert all(Path(e).exists() for e in r["exports"])
    # every image request held one slot of the image cap (1): never two at once
    img = runner.last_stats["image"]
    assert img["granted"] == ray["totals"]["images"] > 0 and img["peak"] == 1
    assert not list(rout.glob(br.PROBE_PREFIX + "*"))  # the driver's probe is gone


@needs_ray
@pytest.mark.slow
def test_the_llm_cap_holds_across_ray_tasks_at_the_server(ray_local, tmp_path):
    """The CLI as on a cluster: another process connects with --ray-address (no --jobs: as
    many scripts at once as the cluster has CPUs, 2)."""
    import subprocess

    from tests.fake_llm import FakeLLM

    ins = tmp_path / "in"
    for n in ("a", "b", "c"):
        script(ins / f"{n}.fountain", n)
    address = ray_local.get_runtime_context().gcs_address
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(REPO),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test-not-real"}
    env.pop("STAGE5_MODEL", None)
    # the instance listens on 127.0.0.1 only; a client on this machine must stay there too
    # (Ray would otherwise dial the machine's network address)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    with FakeLLM(delay=0.3) as llm:
        r = subprocess.run([sys.executable, "-m", "stage5cli", "batch", str(ins), "--style",
                            "film-noir", "--out", str(tmp_path / "out"), "--model", "openai/fake",
                            "--api-base", llm.api_base, "--llm-concurrency", "2", "--engine",
                            "ray", "--ray-address", address, "--report", str(tmp_path / "r.json")],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        spans = sorted((q.started, q.finished) for q in llm.requests)
    assert "to run on 2 worker(s)" in r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["options"]["engine"] == "ray" and rep["totals"]["ok"] == 3
    assert rep["options"]["jobs"] == 2
    assert len(spans) == sum(x["requests"] for x in rep["scripts"]) >= 6
    # each task alone may have 2 requests in flight; two tasks at once would make 4
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak <= 2


@needs_ray
@pytest.mark.slow
def test_a_killed_worker_fails_its_script_only_and_a_rerun_completes_it(ray_local, tmp_path):
    from tests.fake_llm import FakeLLM

    ins = tmp_path / "in"
    for n in ("a", "b", "c"):
        script(ins / f"{n}.fountain", n)
    killed: list[int] = []

    def kill_b(ev):  # kill the worker running b.fountain (index 1) once it is extracting
        if (isinstance(ev, br.RemoteStageEvent) and ev.index == 1 and ev.stage == "extract"
                and not killed):
            killed.append(ev.pid)
            os.kill(ev.pid, signal.SIGKILL)

    def opts(api_base):
        return b.BatchOptions(style="film-noir", out=tmp_path / "out", model="openai/fake",
                              api_base=api_base, jobs=2, llm_concurrency=2, engine="ray")

    os.environ.setdefault("OPENAI_API_KEY", "sk-test-not-real")
    with FakeLLM(delay=0.5) as llm:
        report = b.run_batch([str(ins)], opts(llm.api_base), on_event=kill_b)
    assert killed and b.exit_code(report) == 1
    rep = report.to_dict()
    s = {Path(r["script"]).name: r for r in rep["scripts"]}
    assert s["b.fountain"]["status"] == "failed"
    assert "worker process running it died" in s["b.fountain"]["error"]
    assert s["a.fountain"]["status"] == s["c.fountain"]["status"] == "ok"  # the others finish
    assert b.read_marker(tmp_path / "out" / "b")["state"] == "building"  # not marked done
    with FakeLLM() as llm:  # the same command again: only b runs
        again = b.run_batch([str(ins)], opts(llm.api_base)).to_dict()
    s = {Path(r["script"]).name: r["status"] for r in again["scripts"]}
    assert s == {"a.fountain": "skipped", "b.fountain": "ok", "c.fountain": "skipped"}
    assert again["totals"]["failed"] == 0


@needs_ray
@pytest.mark.slow
def test_ctrl_c_cancels_outstanding_tasks_and_still_reports(ray_local, tmp_path):
    ins = tmp_path / "in"
    for n in ("a", "b", "c", "d", "e"):
        script(ins / f"{n}.fountain", n)

    pressed: list[int] = []

    def interrupt_after_first(ev):
        if isinstance(ev, b.ResultEvent) and not pressed:
            pressed.append(ev.index)
            raise KeyboardInterrupt  # what Ctrl-C raises in the driver's loop

    opts = b.BatchOptions(style="film-noir", out=tmp_path / "out", jobs=1, engine="ray")
    rep = b.run_batch([str(ins)], opts, on_event=interrupt_after_first)
    assert rep.interrupted and b.exit_code(rep) == 130
    st = [r.status for r in rep.scripts]
    assert st[0] == "ok" and set(st[1:]) == {"failed"}
    assert rep.scripts[-1].error == b.INTERRUPTED
    assert not list((tmp_path / "out").glob(br.PROBE_PREFIX + "*"))
    again = b.run_batch([str(ins)], b.BatchOptions(style="film-noir", out=tmp_path / "out",
                                                   jobs=1, engine="ray"))
    assert [r.status for r in again.scripts] == ["skipped"] + ["ok"] * 4


def test_a_cluster_that_never_creates_the_rate_limiter_stops_the_batch_with_one_line(monkeypatch):
    """Ray's export of the actor class once blocked forever inside its GCS call: start_caps
    gives up after its timeout with one line (CapsLost) instead of hanging the batch; an actor
    that is created but never answers is refused the same way."""
    import types

    class GetTimeoutError(Exception):
        pass

    release = threading.Event()

    def ray_get(ref, timeout=None):
        raise GetTimeoutError()

    fake_ray = types.SimpleNamespace(exceptions=types.SimpleNamespace(GetTimeoutError=GetTimeoutError),
                                     get=ray_get)

    class Hangs:
        def remote(self, caps):
            release.wait(30)  # the GCS call that never returns

    class Mute:
        def remote(self, caps):
            return types.SimpleNamespace(stats=types.SimpleNamespace(remote=lambda: "ref"))

    monkeypatch.setattr(br, "import_ray", lambda: fake_ray)
    try:
        monkeypatch.setattr(br, "_caps_actor_class", lambda ray: Hangs())
        with pytest.raises(br.CapsLost, match=r"did not start the batch's rate limiter \(an actor\) within 0.2 s"):
            br.start_caps({"llm": 1}, timeout=0.2)
    finally:
        release.set()
    monkeypatch.setattr(br, "_caps_actor_class", lambda ray: Mute())
    with pytest.raises(br.CapsLost, match="nothing was run"):
        br.start_caps({"llm": 1}, timeout=0.2)
