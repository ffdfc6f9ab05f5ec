"""Real subprocesses: kill -9 in the middle of generation; two processes on one project."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.helpers import add_assets

pytestmark = pytest.mark.slow

STAGE5 = [sys.executable, "-m", "stage5cli"]


def _many(n: int) -> list[tuple[str, str, str]]:
    kinds = ("character", "prop", "location")
    return [(f"ASSET {i:03d}", kinds[i % 3], f"Thing number {i}, painted plainly.") for i in range(n)]


def _count(db, sql):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _kill_when(proc: subprocess.Popen, db, sql: str, at_least: int, timeout: float = 60) -> None:
    """kill -9 `proc` as soon as `sql` counts `at_least` rows (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _count(db, sql) < at_least:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_during_generation_then_resume(styled):
    add_assets(styled, _many(150))
    db = styled / "stage5.db"
    proc = subprocess.Popen([*STAGE5, "generate", "--all", "-p", str(styled)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _kill_when(proc, db, "SELECT count(*) FROM image_generation_jobs WHERE status = 'done'", 10)
    done = _count(db, "SELECT count(*) FROM image_generation_jobs WHERE status = 'done'")
    assert 10 <= done < 150, "the kill did not land mid-way"
    assert _count(db, "PRAGMA integrity_check") == "ok"
    # no half-written image under a final name: every .png referenced is a complete PNG
    from PIL import Image

    for png in (styled / "images").glob("*.png"):
        with Image.open(png) as im:
            im.load()
    # the next run resumes: stuck rows are failed, only what is missing is generated
    without = _count(db, "SELECT count(*) FROM project_assets WHERE image_key_url IS NULL")
    r = subprocess.run([*STAGE5, "generate", "--missing", "--json", "-p", str(styled)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["done"]) == without
    assert _count(db, "SELECT count(*) FROM project_assets WHERE image_key_url IS NULL") == 0
    assert _count(db, "SELECT count(*) FROM image_generation_jobs WHERE status IN ('running','pending')") == 0
    assert not list((styled / "images").glob(".*.tmp"))


@pytest.mark.slow
def test_two_processes_on_one_project(styled):
    add_assets(styled, _many(90))
    gen = subprocess.Popen([*STAGE5, "generate", "--all", "-p", str(styled)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors = []
    locked = []
    i = 0
    while gen.poll() is None and i < 40:
        name = f"ASSET {i:03d}"
        for args in (["lock", name], ["review", "--json"], ["status", "--json"]):
            r = subprocess.run([*STAGE5, *args, "-p", str(styled)], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                errors.append(r.stderr)
        locked.append(name)
        i += 1
    _, gen_err = gen.communicate(timeout=120)
    assert gen.returncode == 0, gen_err
    assert not errors, errors[:3]
    assert "database is locked" not in gen_err
    assert locked, "the other process never ran while generation was going on"
    conn = sqlite3.connect(styled / "stage5.db")
    got = {r[0] for r in conn.execute("SELECT name FROM project_assets WHERE locked = 1")}
    assert set(locked) <= got  # no lost update
    # (an asset locked before generation picked its assets is skipped, by design)
    assert conn.execute("SELECT count(*) FROM project_assets WHERE image_key_url IS NULL "
                        "AND locked = 0").fetchone()[0] == 0


@pytest.mark.slow
def test_kill_9_during_llm_extraction_then_resume(styled, tmp_path):
    """Nothing is half-written; answers received before the kill are reused on the re-run."""
    from tests.fake_llm import FakeLLM

    scenes = "".join(
        f"INT. ROOM {i} - DAY\n\nPERSON {i}, 30s, holds a LAMP {i}.\n\nPERSON {i}\nLine {i}.\n\n"
        for i in range(1, 16))
    script = tmp_path / "long.fountain"
    script.write_text(scenes)
    db = styled / "stage5.db"
    env = {**os.environ, "STAGE5_RETRY_BACKOFF": "0"}
    with FakeLLM(delay=0.25) as llm:
        args = [*STAGE5, "extract", str(script), "--model", "openai/fake", "--api-base",
                llm.api_base, "--concurrency", "2", "--chunk-tokens", "200", "-p", str(styled)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _kill_when(proc, db, "SELECT count(*) FROM llm_calls WHERE response IS NOT NULL", 3)
        answered = _count(db, "SELECT count(*) FROM llm_calls WHERE response IS NOT NULL")
        assert answered >= 3
        assert _count(db, "PRAGMA integrity_check") == "ok"
        assert _count(db, "SELECT count(*) FROM project_assets") == 0  # all or nothing
        seen = len(llm.requests)
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        resumed = len(llm.requests) - seen
    assert _count(db, "SELECT count(*) FROM project_assets WHERE asset_type = 'character'") >= 15
    total = _count(db, "SELECT count(DISTINCT cache_key) FROM llm_calls WHERE response IS NOT NULL")
    assert resumed <= total - answered  # what was answered before the kill was not asked again
