"""`history` and `undo`: the events table, exact reverts, walking back, and refusals."""

from __future__ import annotations

import json
import sqlite3

import pytest

import stage5cli.cli.commands.curation  # noqa: F401
from stage5cli import store
from stage5cli.db import atomic, close_all
from stage5cli.models import ExtractedAsset, Mention
from stage5cli.project import open_project
from tests.conftest import one_line_error, table_dump
from tests.test_curation import (
    assert_refused,
    asset_json,
    db_state,
    events,
    lock_stage,
    make_cast,
    q,
    set_locked,
    undo_restores,
)


def test_history_lists_newest_first_with_payload(styled, cli):
    make_cast(styled)
    cli("add", "CUP", "--type", "prop", "-p", styled)
    cli("edit", "CUP", "--description", "A chipped cup.", "-p", styled)
    r = cli("history", "--json", "-p", styled)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [e["command"] for e in rows] == ["edit", "add", "extract", "style lock"]
    edit = rows[0]
    assert edit["summary"] == "edit CUP: description" and edit["undoable"] and not edit["undone"]
    assert edit["payload"]["before"]["assets"][0]["description"] == ""
    assert edit["payload"]["after"]["assets"][0]["description"] == "A chipped cup."
    assert rows[-1]["undoable"] is False and "branch create" in rows[-1]["why_not"]
    assert len(json.loads(cli("history", "--json", "--limit", "2", "-p", styled).stdout)) == 2
    text = cli("history", "-p", styled).stdout
    assert "edit CUP" in text and "permanent" in text
    cli("undo", "--yes", "-p", styled)
    assert json.loads(cli("history", "--json", "-p", styled).stdout)[0]["undone"] is True


def test_history_empty_and_bad_limit(project, cli):
    r = cli("history", "-p", project)
    assert r.exit_code == 0 and "no history" in r.stdout
    r = cli("history", "--limit", "0", "-p", project)
    assert r.exit_code == 2
    one_line_error(r)


def test_undo_with_nothing_to_undo(project, cli):
    assert_refused(cli, project, ["undo", "--yes"], 2, "nothing to undo")


def test_undo_walks_back(styled, cli):
    s0 = db_state(styled)
    cli("add", "CUP", "--type", "prop", "-p", styled)
    s1 = db_state(styled)
    cli("add", "SAUCER", "--type", "prop", "-p", styled)
    cli("edit", "CUP", "--name", "MUG", "-p", styled)
    r = cli("undo", "-p", styled, input="y\n")  # asks first
    assert r.exit_code == 0 and "undid edit" in r.stdout
    assert asset_json(cli, styled, "CUP")["name"] == "CUP"
    cli("undo", "--yes", "-p", styled)
    assert db_state(styled) == s1
    cli("undo", "--yes", "-p", styled)
    assert db_state(styled) == s0
    # the next event is the style lock, which is permanent
    err = assert_refused(cli, styled, ["undo", "--yes"], 3, "cannot undo style lock")
    assert "branch create" in err
    assert events(styled) == [("style lock", 0), ("add", 1), ("add", 1), ("edit", 1)]


def test_undo_declined_changes_nothing(styled, cli):
    cli("add", "CUP", "--type", "prop", "-p", styled)
    assert_refused(cli, styled, ["undo"], 1, "aborted", input="n\n")


def test_undo_extraction_exactly(styled, cli):
    make_cast(styled)
    cli("edit", "LANTERN", "--description", "Mine.", "-p", styled)
    before = db_state(styled)
    p = open_project(styled)
    changed = [a.model_copy(update={"description": a.description + " Again."}) for a in
               [ExtractedAsset(name="LANTERN", type="prop", description="A lamp.",
                               mentions=[Mention(scene_number=9, text="LANTERN", context="x")]),
                ExtractedAsset(name="ROWBOAT", type="prop", description="A rowboat.",
                               mentions=[Mention(scene_number=9, text="ROWBOAT", context="y")])]]
    report = store.save_extraction(p, changed, extractor="builtin", model=None,
                                    script_path="other.fountain", script_sha256="2" * 64)
    close_all()
    assert report["added"] == ["ROWBOAT"] and "MARGARET" in report["stale"]
    assert q(styled, "SELECT script_path FROM stage_state") == [("other.fountain",)]
    undo_restores(cli, styled, before)
    assert asset_json(cli, styled, "LANTERN")["description"] == "Mine."


def test_undo_of_every_extraction_back_to_empty(styled, cli):
    empty = db_state(styled)
    make_cast(styled)
    undo_restores(cli, styled, empty)


def test_undo_refuses_on_a_locked_asset(styled, cli):
    make_cast(styled)
    set_locked(styled, "LANTERN")
    assert_refused(cli, styled, ["undo", "--yes"], 3, "stage5 unlock", "LANTERN")


def test_undo_refuses_when_changed_outside_history(styled, cli):
    cli("add", "CUP", "--type", "prop", "-p", styled)
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute("UPDATE project_assets SET description = 'sneaky' WHERE name = 'CUP'")
    conn.commit()
    conn.close()
    assert_refused(cli, styled, ["undo", "--yes"], 3, "CUP", "changed after")


def test_undo_refuses_on_a_locked_stage(styled, cli):
    cli("add", "CUP", "--type", "prop", "-p", styled)
    lock_stage(styled)
    assert_refused(cli, styled, ["undo", "--yes"], 3, "stage 5 is locked")


def test_undo_lock_all_reopens_the_stage(styled, cli):
    """An event that locked the stage (with stage_before) may be undone on the locked stage."""
    cli("add", "CUP", "--type", "prop", "-p", styled)
    before = db_state(styled)
    p = open_project(styled)
    with atomic(p.db):
        ids = [r["id"] for r in store.rows(p)]
        snap, stage_before = store.snapshot(p, ids), p.stage()
        p.db.execute("UPDATE project_assets SET locked = 1")
        p.db.execute("UPDATE stage_state SET status = 'locked'")
        p.record_event("lock-all", {"summary": {"assets": 1}, "before": snap, "touched": ids,
                                    "stage_before": stage_before})
    close_all()
    undo_restores(cli, styled, before)


def test_branch_create_is_permanent(styled, cli):
    cli("branch", "create", "alt", "-p", styled)
    err = assert_refused(cli, styled, ["undo", "--yes"], 3, "cannot undo branch create")
    assert "stage5 branch switch main" in err


def test_events_without_before_state_explain(styled, cli):
    p = open_project(styled)
    with atomic(p.db):
        p.record_event("promote", {"summary": {"promoted": 1}, "before": {"assets": [], "mentions": [],
                                   "jobs": []}, "touched": []})
    close_all()
    assert_refused(cli, styled, ["undo", "--yes"], 3, "cannot undo promote", "global library")
    p = open_project(styled)
    with atomic(p.db):
        p.record_event("frobnicate", {"x": 1})
    close_all()
    assert_refused(cli, styled, ["undo", "--yes"], 3, "frobnicate", "no before-state")


def test_undo_moves_files_made_by_the_change_to_the_trash(styled, cli):
    """A generate-like event (before/touched, no after): its new image goes to the trash."""
    cli("add", "CUP", "--type", "prop", "-p", styled)
    before = db_state(styled)
    img = styled / "images" / "cup.png"
    p = open_project(styled)
    with atomic(p.db):
        aid = store.rows(p)[0]["id"]
        snap = store.snapshot(p, [aid])
        p.db.execute("INSERT INTO image_generation_jobs (asset_id, status, backend, prompt, width,"
                     " height, image_path, created_at) VALUES (?, 'done', 'placeholder', 'p', 8, 8,"
                     " 'images/cup.png', 'now')", [aid])
        p.db.execute("UPDATE project_assets SET image_key_url = 'images/cup.png' WHERE id = ?", [aid])
        p.record_event("generate", {"summary": {"images": 1}, "before": snap, "touched": [aid]})
    close_all()
    img.write_bytes(b"png")
    r = cli("undo", "--yes", "-p", styled)
    assert r.exit_code == 0, r.output
    assert "to the trash" in r.stdout
    assert db_state(styled) == before
    assert not img.exists()
    assert [f.read_bytes() for f in (styled / "images" / ".trash").iterdir()] == [b"png"]


def test_undo_remove_needs_the_trashed_file(styled, cli):
    make_cast(styled)
    img = styled / "images" / "lamp.png"
    img.write_bytes(b"png")
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute("UPDATE project_assets SET image_key_url = 'images/lamp.png' WHERE name = 'LANTERN'")
    conn.commit()
    conn.close()
    assert cli("remove", "LANTERN", "--yes", "-p", styled).exit_code == 0
    trashed = next((styled / "images" / ".trash").iterdir())
    img.write_bytes(b"new")  # something else took the name
    assert_refused(cli, styled, ["undo", "--yes"], 3, "exists again")
    img.unlink()
    trashed.unlink()
    assert_refused(cli, styled, ["undo", "--yes"], 3, "is gone")


def test_undo_is_per_branch(styled, cli):
    cli("add", "CUP", "--type", "prop", "-p", styled)
    cli("branch", "create", "alt", "-p", styled)
    cli("add", "SAUCER", "--type", "prop", "-p", styled)
    cli("branch", "switch", "main", "-p", styled)
    r = cli("undo", "--yes", "-p", styled)
    assert r.exit_code == 0 and "CUP" in r.stdout
    cli("branch", "switch", "alt", "-p", styled)
    assert asset_json(cli, styled, "CUP")["name"] == "CUP"  # the copy on alt is untouched
    r = cli("undo", "--yes", "-p", styled)
    assert "SAUCER" in r.stdout
    everywhere = json.loads(cli("history", "--json", "--all-branches", "-p", styled).stdout)
    assert {e["branch"] for e in everywhere} == {"main", "alt"}
    assert {e["branch"] for e in json.loads(cli("history", "--json", "-p", styled).stdout)} == {"alt"}


def test_event_written_in_the_same_transaction(styled, cli):
    """A change that fails half-way leaves neither the change nor its event."""
    cli("add", "CUP", "--type", "prop", "-p", styled)
    before = table_dump(styled / "stage5.db")
    p = open_project(styled)
    from stage5cli import curation

    original = p.record_event

    def boom(command, payload):
        original(command, payload)
        raise RuntimeError("disk full")

    p.record_event = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        curation.edit(p, "CUP", description="never saved")
    close_all()
    assert table_dump(styled / "stage5.db") == before


def test_undo_walks_past_permanent_events(styled, cli):
    """17.5: promote / branch create / style lock do not wall off the history below them."""
    cli("add", "CUP", "--type", "prop", "-p", styled)
    cli("generate", "CUP", "-p", styled)
    cli("lock", "CUP", "-p", styled)
    r = cli("promote", "CUP", "-p", styled)
    assert r.exit_code == 0, r.output
    r = cli("undo", "--yes", "-p", styled)
    assert r.exit_code == 0, r.output
    assert "stepped over promote" in r.stdout and "undid lock" in r.stdout
    for command in ("generate", "add"):
        r = cli("undo", "--yes", "-p", styled)
        assert r.exit_code == 0 and f"undid {command}" in r.stdout, r.output
    assert cli("review", "-p", styled, "--json").stdout.strip() == "[]"
    # only permanent events left: the newest says why it cannot be undone
    assert_refused(cli, styled, ["undo", "--yes"], 3, "cannot undo promote")
