"""init, opening projects, --project / $STAGE5_PROJECT, bad project folders."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tests.conftest import one_line_error, table_dump


def test_init_creates_db_and_images(tmp_path, cli):
    r = cli("init", tmp_path / "p")
    assert r.exit_code == 0
    assert (tmp_path / "p" / "stage5.db").is_file()
    assert (tmp_path / "p" / "images").is_dir()
    conn = sqlite3.connect(tmp_path / "p" / "stage5.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT name FROM branches").fetchall() == [("main",)]


def test_init_is_idempotent(project, cli):
    before = table_dump(project / "stage5.db")
    r = cli("init", project)
    assert r.exit_code == 0 and "already a project" in r.stdout
    assert table_dump(project / "stage5.db") == before


def test_init_refuses_a_file(tmp_path, cli):
    f = tmp_path / "afile"
    f.write_text("x")
    r = cli("init", f)
    assert r.exit_code == 2
    assert "is a file" in one_line_error(r)


def test_init_refuses_unwritable_folder(tmp_path, cli):
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        target = d
    else:  # root ignores permission bits; /proc refuses new folders even to root
        target = "/proc/stage5-cannot-create"
    r = cli("init", target)
    assert r.exit_code == 2
    assert "cannot" in one_line_error(r)


def test_init_refuses_foreign_sqlite(tmp_path, cli):
    d = tmp_path / "foreign"
    d.mkdir()
    conn = sqlite3.connect(d / "stage5.db")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    before = (d / "stage5.db").read_bytes()
    r = cli("init", d)
    assert r.exit_code == 2
    assert "not a stage5 project" in one_line_error(r)
    assert (d / "stage5.db").read_bytes() == before


def test_not_sqlite_at_all(tmp_path, cli):
    d = tmp_path / "junk"
    d.mkdir()
    (d / "stage5.db").write_bytes(b"hello, not a database" * 10)
    r = cli("status", "-p", d)
    assert r.exit_code == 2
    assert "not a SQLite database" in one_line_error(r)


def test_truncated_db(project, cli):
    data = (project / "stage5.db").read_bytes()
    (project / "stage5.db").write_bytes(data[:1000])
    for f in project.glob("stage5.db-*"):
        f.unlink()
    r = cli("status", "-p", project)
    assert r.exit_code in (1, 2)
    one_line_error(r)


def test_outside_a_project(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("status")
    assert r.exit_code == 2
    assert one_line_error(r).startswith("error: not a stage5 project: run stage5 init")


def test_project_from_environment(project, cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STAGE5_PROJECT", str(project))
    r = cli("status", "--json")
    assert r.exit_code == 0
    assert '"branch": "main"' in r.stdout


def test_project_from_current_folder(project, cli, monkeypatch):
    monkeypatch.chdir(project)
    assert cli("status").exit_code == 0


def test_status_json_shape(styled, cli):
    import json

    data = json.loads(cli("status", "--json", "-p", styled).stdout)
    assert data["style"]["id"] == "film-noir" and len(data["style"]["sha256"]) == 64
    assert data["status"] == "draft"
    assert set(data["assets"]) == {"character", "prop", "location"}
    assert data["total_assets"] == 0
    assert {b["cause"] for b in data["blockers"]} == {"no-assets"}


def test_status_check_blocks_until_locked(styled, cli):
    r = cli("status", "--check", "-p", styled)
    assert r.exit_code == 3
    assert "at least one asset" in one_line_error(r)


def test_debug_shows_traceback(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STAGE5_DEBUG", "1")
    from stage5cli.errors import Stage5Error

    with pytest.raises(Stage5Error):
        cli("status")
