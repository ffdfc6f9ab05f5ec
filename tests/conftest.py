"""Shared fixtures: an isolated $STAGE5_HOME, a CliRunner with a fixed width, ready projects."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

# Before anything imports litellm: never fetch the price list (there is no network in tests).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from stage5cli.cli import app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
VENDORED_CORPUS = REPO / "tests" / "data" / "corpus"

needs_shared = pytest.mark.skipif(
    not CORPUS.is_dir(), reason="../shared (corpus and conformance) is not beside this clone"
)


# Files whose tests one xdist worker runs, all of them (for a module-scoped fixture that takes
# seconds to start, which two workers would each start). None today: each Ray test starts its
# own local instance (tests/test_batch_ray.py ray_local), so they may spread over the workers.
ONE_WORKER_FILES: set[str] = set()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown (and unused) without xdist
def pytest_xdist_make_scheduler(config, log):
    """Under `-n` with the default `--dist load`: each test is its own unit of work, handed to
    whichever worker is free (as `load` does), except ONE_WORKER_FILES, one unit each.
    (`--dist loadgroup` would do this with xdist_group marks, but xdist 3.8 renames the test ids
    through an attribute pytest 9 no longer reads, so its groups are silently ignored.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerFiles(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return path if path in ONE_WORKER_FILES else nodeid

    return OneWorkerFiles(config, log)


def pytest_collection_modifyitems(config, items):
    """Slow tests first, so that under xdist (`-n 2`) the long ones start early and the workers
    finish together instead of one worker running a long test alone at the end. Modules with a
    `slow` test come first and, inside each module, its slow tests; a module's tests stay
    together, so a module-scoped fixture (a Ray instance, a loaded pipeline) is set up once."""
    slow_files = {it.nodeid.split("::")[0] for it in items if it.get_closest_marker("slow")}
    first = {}  # each file's first position, to keep the collection order of files otherwise
    for i, it in enumerate(items):
        first.setdefault(it.nodeid.split("::")[0], i)

    def key(it):
        f = it.nodeid.split("::")[0]
        return f not in slow_files, first[f], it.get_closest_marker("slow") is None

    items.sort(key=key)  # stable: the collection order within each group


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("stage5-home")
    monkeypatch.setenv("STAGE5_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for var in ("STAGE5_PROJECT", "STAGE5_MODEL", "STAGE5_DEBUG", "STAGE5_DIFFUSERS_MODEL"):
        monkeypatch.delenv(var, raising=False)
    yield


class Runner:
    """Invoke the CLI in-process; `run(...)` returns click's Result with stdout/stderr split."""

    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str | os.PathLike, input: str | None = None, env: dict | None = None):
        return self.runner.invoke(app, [str(a) for a in args], input=input, env=env,
                                  catch_exceptions=False)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, worker_id) -> Path:
    """The tiny random-weight Stable Diffusion pipeline (tests/tiny_pipeline.py), saved once per
    test session and shared read-only by every diffusers test: building it costs seconds. Under
    xdist the first worker builds it in the shared temporary root; the others wait on a lock."""
    pytest.importorskip("diffusers")
    from tests.tiny_pipeline import save_tiny_pipeline

    if worker_id == "master":  # not under xdist
        return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "model")
    from filelock import FileLock  # (comes with huggingface_hub, which diffusers needs)

    root = tmp_path_factory.getbasetemp().parent  # shared by the workers of this session
    model, done = root / "tiny-sd" / "model", root / "tiny-sd" / "done"
    with FileLock(str(root / "tiny-sd.lock")):
        if not done.exists():
            save_tiny_pipeline(model)
            done.touch()
    return model


@pytest.fixture
def cli() -> Runner:
    return Runner()


@pytest.fixture
def project(tmp_path, cli) -> Path:
    """An initialised project folder (no style locked)."""
    root = tmp_path / "proj"
    r = cli("init", root)
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture
def styled(project, cli) -> Path:
    """A project with the film-noir style locked."""
    r = cli("style", "lock", "film-noir", "-p", project)
    assert r.exit_code == 0, r.output
    return project


# a script with a vehicle heading (PICKUP TRUCK), two speakers and a CAPS prop: the curation tests
# remove, merge and re-extract on it
TRUCK_SCRIPT = (
    "INT. KITCHEN - DAY\n\nMARA holds the BRASS KEY.\n\nMARA\nWhere is the truck?\n\n"
    "EXT. PICKUP TRUCK - NIGHT\n\nTOM sits in the cab.\n\nTOM\nGet in.\n\n"
    "INT. KITCHEN - NIGHT\n\nMARA waits.\n\nMARA\nFine.\n\nTOM\nGood.\n")


def one_line_error(result) -> str:
    """Assert the failure is exactly one line on stderr with no traceback; return it."""
    err = result.stderr.strip()
    assert err, f"no error message (stdout: {result.stdout!r})"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(err.splitlines()) == 1, err
    return err


def table_dump(db_path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, for byte-for-byte 'nothing changed' comparisons."""
    conn = sqlite3.connect(db_path)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        conn.close()
