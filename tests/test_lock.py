"""lock / unlock / lock-all: every blocker, the locked stage, status --check."""

from __future__ import annotations

import json

from tests.conftest import one_line_error, table_dump
from tests.helpers import TRIO, add_assets


def test_lock_all_blocks_without_style(project, cli):
    add_assets(project, TRIO)
    before = table_dump(project / "stage5.db")
    r = cli("lock-all", "-p", project, "--json")
    assert r.exit_code == 3
    data = json.loads(r.stdout)
    causes = {b["cause"]: b for b in data["blockers"]}
    assert set(causes) == {"no-style", "missing"}
    assert causes["missing"]["assets"] == ["MARA", "LIGHTHOUSE LAMP ROOM", "BRASS TELESCOPE"]
    assert causes["missing"]["fix"] == "stage5 generate --missing"
    assert table_dump(project / "stage5.db") == before


def test_lock_all_blocks_on_empty_project(styled, cli):
    r = cli("lock-all", "-p", styled)
    assert r.exit_code == 3
    assert "at least one asset" in r.stderr


def test_lock_all_lists_missing_images_with_fix(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "MARA", "-p", styled)
    before = table_dump(styled / "stage5.db")
    r = cli("lock-all", "--allow-placeholder", "-p", styled)
    assert r.exit_code == 3
    table = r.stdout.split("Blocks stage 5")[1]
    # one row per cause, with the one command that fixes the whole group
    assert "2 assets have no image" in table and "stage5 generate --missing" in table
    assert "MARA" not in table and "stage5 generate 'BRASS" not in table
    assert one_line_error(r) == ("error: stage 5 cannot be locked: 2 assets have no image: "
                                 "stage5 generate --missing")
    assert table_dump(styled / "stage5.db") == before


def test_lock_all_locks_everything_and_stage(styled, cli):
    add_assets(styled, TRIO, conflicts=("MARA",))
    cli("generate", "--all", "-p", styled)
    r = cli("lock-all", "--strict", "--allow-placeholder", "-p", styled)
    assert r.exit_code == 3 and "conflict" in one_line_error(r)  # the conflict blocks
    r = cli("lock-all", "--allow-placeholder", "--yes", "-p", styled)
    assert r.exit_code == 0, r.output
    assert "1 asset has an unresolved visual conflict" in r.stdout  # listed as a warning
    assert cli("status", "--check", "-p", styled).exit_code == 0
    assert all(a["locked"] for a in json.loads(cli("review", "--json", "-p", styled).stdout))
    # a locked stage refuses every mutating command, naming the way out
    for args in (["generate", "--all"], ["unlock", "MARA"], ["style", "lock", "anime"],
                 ["extract", "nothing.fountain"]):
        r = cli(*args, "-p", styled)
        assert r.exit_code == 3, args
        assert "branch create" in one_line_error(r), args


def test_missing_image_file_blocks(styled, cli):
    add_assets(styled, TRIO[:1])
    cli("generate", "--all", "-p", styled)
    for f in (styled / "images").glob("*.png"):
        f.unlink()
    r = cli("lock-all", "-p", styled, "--json")
    assert r.exit_code == 3
    assert [b["cause"] for b in json.loads(r.stdout)["blockers"]] == ["missing"]


def test_image_in_another_style_blocks_on_new_branch(styled, cli):
    add_assets(styled, TRIO[:1])
    cli("generate", "--all", "-p", styled)
    cli("branch", "create", "anime-take", "--style", "anime", "-p", styled)
    r = cli("lock-all", "--allow-placeholder", "-p", styled, "--json")
    assert r.exit_code == 3
    group = json.loads(r.stdout)["blockers"][0]
    assert group["cause"] == "off-style" and group["fix"] == "stage5 generate --stale"
    assert cli("generate", "--stale", "-p", styled).exit_code == 0
    assert cli("lock-all", "--allow-placeholder", "-p", styled).exit_code == 0


def test_lock_generated_only(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "MARA", "-p", styled)
    r = cli("lock-all", "--generated", "--json", "-p", styled)  # a placeholder is not signed off
    assert r.exit_code == 0 and json.loads(r.stdout)["locked"] == []
    r = cli("lock-all", "--generated", "--allow-placeholder", "--json", "-p", styled)
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["locked"] == ["MARA"] and data["stage"] == "draft"


def test_lock_unlock(styled, cli):
    add_assets(styled, TRIO)
    assert cli("lock", "mara", "BRASS TELESCOPE", "-p", styled).exit_code == 0
    locked = {a["name"] for a in json.loads(cli("review", "--json", "-p", styled).stdout) if a["locked"]}
    assert locked == {"MARA", "BRASS TELESCOPE"}
    assert cli("unlock", "MARA", "-p", styled).exit_code == 0
    r = cli("lock", "NOPE", "-p", styled)
    assert r.exit_code == 2


def test_lock_all_atomic_on_failure(styled, cli, monkeypatch):
    """An exception halfway through lock-all rolls everything back."""
    import pytest

    from stage5cli import locking
    from stage5cli import project as project_mod

    add_assets(styled, TRIO)
    cli("generate", "--all", "-p", styled)
    before = table_dump(styled / "stage5.db")
    p = project_mod.open_project(styled)
    real = p.record_event

    def boom(*a, **k):
        real(*a, **k)
        raise RuntimeError("injected")

    monkeypatch.setattr(p, "record_event", boom)
    with pytest.raises(RuntimeError):
        locking.lock_all(p, allow_placeholder=True)
    p.db.conn.close()
    assert table_dump(styled / "stage5.db") == before
