"""Branches: create (copying assets, unlocked, optional style), list, switch."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import TRUCK_SCRIPT, one_line_error, table_dump


def _add_asset(root, name="BRICK", locked=1):
    conn = sqlite3.connect(root / "stage5.db")
    bid = conn.execute("SELECT active_branch_id FROM project").fetchone()[0]
    conn.execute(
        "INSERT INTO project_assets (branch_id, name, asset_type, description, locked, metadata,"
        " created_at, updated_at) VALUES (?, ?, 'character', 'A man.', ?, '{}', 'now', 'now')",
        [bid, name, locked])
    aid = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    conn.execute("INSERT INTO asset_mentions (asset_id, scene_number, text) VALUES (?, 3, 'x')", [aid])
    conn.commit()
    conn.close()


def test_create_copies_assets_unlocked_with_style(styled, cli):
    _add_asset(styled)
    r = cli("branch", "create", "anime-take", "--style", "anime", "-p", styled)
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("branch", "list", "--json", "-p", styled).stdout)
    assert [(b["name"], b["active"], b["style_id"], b["assets"]) for b in rows] == [
        ("main", False, "film-noir", 1), ("anime-take", True, "anime", 1)]
    conn = sqlite3.connect(styled / "stage5.db")
    copies = conn.execute(
        "SELECT a.locked, count(m.id) FROM project_assets a JOIN asset_mentions m ON m.asset_id = a.id"
        " JOIN project p ON p.active_branch_id = a.branch_id GROUP BY a.id").fetchall()
    assert copies == [(0, 1)]


def test_create_without_style_has_none_and_gate_applies(styled, cli):
    cli("branch", "create", "bare", "--no-style", "-p", styled)
    data = json.loads(cli("status", "--json", "-p", styled).stdout)
    assert data["branch"] == "bare" and data["style"] is None
    assert cli("style", "lock", "anime", "-p", styled).exit_code == 0


def test_no_switch_and_switch(styled, cli):
    cli("branch", "create", "side", "--no-switch", "-p", styled)
    assert json.loads(cli("status", "--json", "-p", styled).stdout)["branch"] == "main"
    assert cli("branch", "switch", "side", "-p", styled).exit_code == 0
    assert json.loads(cli("status", "--json", "-p", styled).stdout)["branch"] == "side"


def test_switch_missing_branch(styled, cli):
    before = table_dump(styled / "stage5.db")
    r = cli("branch", "switch", "mian", "-p", styled)
    assert r.exit_code == 2
    assert "did you mean: main" in one_line_error(r)
    assert table_dump(styled / "stage5.db") == before


def test_duplicate_and_bad_names(styled, cli):
    assert cli("branch", "create", "main", "-p", styled).exit_code == 2
    assert cli("branch", "create", "a/b", "-p", styled).exit_code == 2
    r = cli("branch", "create", "x", "--style", "nope", "-p", styled)
    assert r.exit_code == 2
    assert [b["name"] for b in json.loads(cli("branch", "list", "--json", "-p", styled).stdout)] == ["main"]


def test_branch_create_is_atomic(styled, monkeypatch):
    """A failure halfway through the copy leaves no branch behind."""
    import pytest

    from stage5cli import project as project_mod

    _add_asset(styled, "A", 0)
    _add_asset(styled, "B", 0)
    before = table_dump(styled / "stage5.db")
    p = project_mod.open_project(styled)

    def boom(*a, **k):
        raise RuntimeError("injected")

    monkeypatch.setattr(project_mod, "copy_assets", boom)
    with pytest.raises(RuntimeError):
        project_mod.create_branch(p, "half", None)
    p.db.conn.close()
    assert table_dump(styled / "stage5.db") == before


def test_branch_create_keeps_the_style(styled, cli):
    """17.6: a new branch keeps the current style; --style picks another; --no-style none."""
    r = cli("branch", "create", "kept", "-p", styled)
    assert r.exit_code == 0 and "with style film-noir" in r.stdout, r.output
    assert "film-noir" in cli("status", "-p", styled).stdout
    rows = {b["name"]: b for b in json.loads(cli("branch", "list", "-p", styled, "--json").stdout)}
    assert rows["kept"]["style_id"] == "film-noir"
    r = cli("branch", "create", "other", "--style", "watercolour-storybook", "-p", styled)
    assert r.exit_code == 0 and "with style watercolour-storybook" in r.stdout, r.output
    r = cli("branch", "create", "bare", "--no-style", "-p", styled)
    assert r.exit_code == 0 and "without a style" in r.stdout, r.output
    rows = {b["name"]: b for b in json.loads(cli("branch", "list", "-p", styled, "--json").stdout)}
    assert rows["other"]["style_id"] == "watercolour-storybook" and rows["bare"]["style_id"] is None
    r = cli("branch", "create", "x", "--style", "film-noir", "--no-style", "-p", styled)
    assert r.exit_code == 2


def test_branch_create_copies_the_curation_records(styled, cli, tmp_path):
    """Removals and merges travel to the new branch: re-extracting there keeps a removed asset
    removed and a merged source in its target (the copy of it on the new branch)."""
    script = tmp_path / "truck.fountain"
    script.write_text(TRUCK_SCRIPT)
    assert cli("extract", script, "-p", styled).exit_code == 0
    assert cli("remove", "TOM", "--yes", "-p", styled).exit_code == 0
    assert cli("add", "truck", "--type", "prop", "-p", styled).exit_code == 0
    assert cli("merge", "truck", "PICKUP TRUCK", "--force", "--yes", "-p", styled).exit_code == 0
    assert cli("branch", "create", "take-two", "-p", styled).exit_code == 0
    conn = sqlite3.connect(styled / "stage5.db")
    recs = conn.execute(
        "SELECT b.name, c.kind, c.name, t.name, t.branch_id = c.branch_id FROM curation_records c"
        " JOIN branches b ON b.id = c.branch_id LEFT JOIN project_assets t ON t.id = c.target_id"
        " ORDER BY b.id, c.kind, c.name").fetchall()
    conn.close()
    mine = [r[1:] for r in recs if r[0] == "main"]
    assert [r[1:] for r in recs if r[0] == "take-two"] == mine
    assert ("merged", "PICKUP TRUCK", "truck", 1) in mine and ("removed", "TOM", None, None) in mine
    r = cli("extract", script, "-p", styled)
    assert r.exit_code == 0, r.output
    assert "skipped: removed by you: TOM" in r.stdout
    after = {a["name"]: a for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    assert "TOM" not in after and "PICKUP TRUCK" not in after, sorted(after)
    assert "PICKUP TRUCK" in after["truck"]["aliases"]
