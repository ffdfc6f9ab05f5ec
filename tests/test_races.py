"""Concurrent commands never duplicate or bypass the gate (issue 14, item 2).

Two real processes start the same moment (a barrier) on a fresh copy of a project, for many
tries: every read that decides a write happens inside the writing transaction, so the result
is the same as one after the other. Also: undo refuses while a generate runs in another
process, and a long-running command refuses to save after the branch was switched.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fake_llm import FakeLLM
from tests.loopback import LoopbackServer, Reply
from tests.race_workers import worker

pytestmark = pytest.mark.slow

TRIES = 20


def _race(kind: str, template: Path, tmp_path: Path) -> list[tuple[str, int, str]]:
    roots = []
    for i in range(TRIES):
        dst = tmp_path / f"try{i:02d}"
        shutil.copytree(template, dst)
        roots.append(str(dst))
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(kind, roots, who, barrier, out)) for who in (0, 1)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in range(2 * TRIES)]
    for p in procs:
        p.join(timeout=60)
    crashes = [r for r in results if not r[2].startswith(("ok", "refused"))]
    assert not crashes, crashes[0][2]
    return results


def _one(db: Path, sql: str, args=()):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_two_extracts_at_once_never_add_an_asset_twice(styled, tmp_path):
    _race("extract", styled, tmp_path)
    for i in range(TRIES):
        db = tmp_path / f"try{i:02d}" / "stage5.db"
        [(n, distinct)] = _one(db, "SELECT count(*), count(DISTINCT name) FROM project_assets")
        assert (n, distinct) == (40, 40), f"try {i}: {n} assets for 40 names"


def test_lock_all_racing_add_never_locks_stage5_with_an_unready_asset(styled, cli, tmp_path):
    assert cli("add", "OLD LAMP", "--type", "prop", "-p", styled).exit_code == 0
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    _race("lock-all", styled, tmp_path)
    for i in range(TRIES):
        db = tmp_path / f"try{i:02d}" / "stage5.db"
        [(status,)] = _one(db, "SELECT status FROM stage_state")
        if status == "locked":
            assert _one(db, "SELECT name FROM project_assets WHERE locked = 0 "
                            "OR image_key_url IS NULL") == [], f"try {i}"


def test_two_library_uses_at_once_add_the_asset_once(styled, cli, tmp_path):
    source = tmp_path / "source"
    assert cli("init", source).exit_code == 0
    assert cli("style", "lock", "film-noir", "-p", source).exit_code == 0
    assert cli("add", "SHARED LAMP", "--type", "prop", "-p", source).exit_code == 0
    assert cli("generate", "--all", "-p", source).exit_code == 0
    assert cli("lock", "SHARED LAMP", "-p", source).exit_code == 0
    assert cli("promote", "SHARED LAMP", "-p", source).exit_code == 0
    results = _race("library-use", styled, tmp_path / "tries")
    for i in range(TRIES):
        db = tmp_path / "tries" / f"try{i:02d}" / "stage5.db"
        [(n,)] = _one(db, "SELECT count(*) FROM project_assets WHERE name = 'SHARED LAMP'")
        assert n == 1, f"try {i}: the library asset was added {n} times"
    assert any(r[2].startswith("refused: the project already has") for r in results)


# ---- a command still running in another process ------------------------------------------

STAGE5 = [sys.executable, "-m", "stage5cli"]


def _wait_for(pred, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@dataclass
class GatedLLM(FakeLLM):
    """FakeLLM whose answers wait until the test opens the gate."""

    gate: threading.Event = field(default_factory=threading.Event)

    def __call__(self, req):
        self.gate.wait(120)
        return super().__call__(req)


def _png_reply(req) -> Reply:
    import base64
    import io

    from PIL import Image

    w, h = (int(x) for x in req.json["size"].split("x"))
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 90, 90)).save(buf, format="PNG")
    return Reply(200, {"created": 1, "data": [{"b64_json": base64.b64encode(buf.getvalue()).decode()}]})


@pytest.mark.slow
def test_undo_refuses_a_generate_still_running_in_another_process(styled, cli):
    assert cli("add", "OLD LAMP", "--type", "prop", "-p", styled).exit_code == 0
    gate = threading.Event()

    def responder(req):
        gate.wait(120)
        return _png_reply(req)

    with LoopbackServer(responder) as server:
        proc = subprocess.Popen(
            [*STAGE5, "generate", "OLD LAMP", "--backend", "api", "--model", "openai/test-image",
             "--api-base", server.url + "/v1", "--yes", "-p", str(styled)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            _wait_for(lambda: server.requests or proc.poll() is not None, "the image request")
            r = cli("undo", "--yes", "-p", styled)
        finally:
            gate.set()
            out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert r.exit_code == 3
    assert f"a generate is still running (pid {proc.pid})" in r.stderr
    # the generate finished and kept its image and job rows; now undo is allowed
    db = styled / "stage5.db"
    assert _one(db, "SELECT status FROM image_generation_jobs") == [("done",)]
    assert cli("undo", "--yes", "-p", styled).exit_code == 0


@pytest.mark.slow
def test_extract_refuses_to_save_into_a_branch_switched_to_meanwhile(styled, cli, tmp_path):
    script = tmp_path / "s.fountain"
    script.write_text("INT. KITCHEN - NIGHT\n\nMARA lights the BRASS LANTERN.\n\nMARA\nStay.\n")
    with GatedLLM() as llm:
        proc = subprocess.Popen(
            [*STAGE5, "extract", str(script), "--model", "openai/fake-model", "--api-base",
             llm.api_base, "-p", str(styled)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            _wait_for(lambda: llm.server.requests or proc.poll() is not None, "the LLM request")
            r = cli("branch", "create", "other", "-p", styled)
        finally:
            llm.gate.set()
            out, err = proc.communicate(timeout=120)
    assert r.exit_code == 0, r.output
    assert proc.returncode == 3, err
    assert "the active branch changed from 'main' to 'other'" in err
    assert _one(styled / "stage5.db", "SELECT count(*) FROM project_assets") == [(0,)]
