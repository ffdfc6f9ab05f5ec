"""Review and curation from the CLI: show, edit ($EDITOR too), add, remove, merge, describe,
conflicts; refusals; re-extraction keeping user edits; undo restoring the database exactly."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

import stage5cli.cli.commands.curation  # noqa: F401
from stage5cli import store
from stage5cli.db import atomic, close_all
from stage5cli.models import ExtractedAsset, Mention
from stage5cli.project import open_project
from tests.conftest import TRUCK_SCRIPT, one_line_error, table_dump

SCRIPT = """\
Title: The Harbour

INT. HARBOUR OFFICE - DAY

MARGARET, fifties, enters in a blue coat, carrying a LANTERN.

MARGARET
Where is everyone?

EXT. DOCKS - NIGHT

MARGARET waits on the docks in her blue coat.

INT. KITCHEN - DAY

MOM stirs a pot. The LANTERN hangs over the stove.

EXT. DOCKS - DAY

MARGARET buttons her blue coat against the wind.

INT. HARBOUR OFFICE - NIGHT

MARGARET arrives in a red coat, soaked.
"""

C1 = "MARGARET, fifties, enters in a blue coat, carrying a LANTERN."
C2 = "MARGARET waits on the docks in her blue coat."
C3 = "MOM stirs a pot. The LANTERN hangs over the stove."
C4 = "MARGARET buttons her blue coat against the wind."
C5 = "MARGARET arrives in a red coat, soaked."
DETAILS = "coat is blue in scenes 1, 2 and 4 but red in scene 5"


def cast_assets() -> list[ExtractedAsset]:
    return [
        ExtractedAsset(
            name="MARGARET", type="character", aliases=["MAGGIE"],
            mentions=[Mention(scene_number=1, text="MARGARET", context=C1),
                      Mention(scene_number=2, text="MARGARET", context=C2),
                      Mention(scene_number=4, text="MARGARET", context=C4),
                      Mention(scene_number=5, text="MARGARET", context=C5)],
            description="A woman in her fifties in a long blue coat, hair pinned up.",
            confidence_score=0.8, is_priority=True, has_conflicts=True, conflict_details=DETAILS),
        ExtractedAsset(
            name="MOM", type="character", aliases=["MOTHER"],
            mentions=[Mention(scene_number=3, text="MOM", context=C3),
                      Mention(scene_number=4, text="MARGARET", context=C4)],
            description="A tired mother at the stove.", confidence_score=0.5,
            has_conflicts=True, conflict_details="apron is white or grey"),
        ExtractedAsset(
            name="LANTERN", type="prop",
            mentions=[Mention(scene_number=1, text="LANTERN", context=C1),
                      Mention(scene_number=3, text="LANTERN", context=C3)],
            description="An old brass storm lantern.", confidence_score=0.7),
        ExtractedAsset(
            name="HARBOUR OFFICE", type="location",
            mentions=[Mention(scene_number=1, text="HARBOUR OFFICE", context="INT. HARBOUR OFFICE - DAY"),
                      Mention(scene_number=5, text="HARBOUR OFFICE", context="INT. HARBOUR OFFICE - NIGHT")],
            description="A cramped office of varnished wood.", confidence_score=0.9),
    ]


def make_cast(root: Path) -> Path:
    """Write the script beside the project and store an extraction of it (no extractor needed)."""
    script = root.parent / "harbour.fountain"
    script.write_text(SCRIPT, encoding="utf-8")
    p = open_project(root)
    store.save_extraction(p, cast_assets(), extractor="builtin", model=None,
                           script_path=str(script), script_sha256="0" * 64)
    close_all()
    return script


@pytest.fixture
def cast(styled) -> Path:
    make_cast(styled)
    return styled


def db_state(root: Path, *skip: str) -> dict:
    """Every table except `events` (whose undone flag changes) and any named in `skip`."""
    dump = table_dump(root / "stage5.db")
    for name in ("events", *skip):
        dump.pop(name, None)
    return dump


def q(root: Path, sql: str, args=()) -> list[tuple]:
    conn = sqlite3.connect(root / "stage5.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def meta_of(root: Path, name: str) -> dict:
    return json.loads(q(root, "SELECT metadata FROM project_assets WHERE name = ?", [name])[0][0])


def asset_json(cli, root: Path, ref: str) -> dict:
    r = cli("show", ref, "--json", "-p", root)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def events(root: Path) -> list[tuple]:
    return q(root, "SELECT command, undone FROM events ORDER BY id")


def undo_restores(cli, root: Path, before: dict, *skip: str) -> None:
    r = cli("undo", "--yes", "-p", root)
    assert r.exit_code == 0, r.output
    assert db_state(root, *skip) == before


def set_locked(root: Path, name: str) -> None:
    conn = sqlite3.connect(root / "stage5.db")
    conn.execute("UPDATE project_assets SET locked = 1 WHERE name = ?", [name])
    conn.commit()
    conn.close()


def lock_stage(root: Path) -> None:
    conn = sqlite3.connect(root / "stage5.db")
    conn.execute("UPDATE stage_state SET status = 'locked'")
    conn.commit()
    conn.close()


def assert_refused(cli, root: Path, args: list, code: int, *needles: str, input=None, env=None) -> str:
    before = table_dump(root / "stage5.db")
    r = cli(*args, "-p", root, input=input, env=env)
    assert r.exit_code == code, (r.exit_code, r.output)
    err = one_line_error(r)
    for n in needles:
        assert n in err, err
    assert table_dump(root / "stage5.db") == before
    return err


# ---- show --------------------------------------------------------------------------------


def test_show_json_has_everything(cast, cli):
    conn = sqlite3.connect(cast / "stage5.db")
    aid = conn.execute("SELECT id FROM project_assets WHERE name = 'LANTERN'").fetchone()[0]
    conn.execute("INSERT INTO image_generation_jobs (asset_id, status, backend, model, prompt, width,"
                 " height, seed, image_path, created_at) VALUES (?, 'done', 'placeholder', 'p', 'x',"
                 " 512, 512, 7, 'images/lantern.png', 'now')", [aid])
    conn.commit()
    conn.close()
    d = asset_json(cli, cast, "lantern")  # case-insensitive
    assert d["name"] == "LANTERN" and d["type"] == "prop" and d["scenes"] == [1, 3]
    assert [m["context"] for m in d["mentions"]] == [C1, C3]
    assert d["jobs"][0]["seed"] == 7 and d["jobs"][0]["image_exists"] is False
    assert d["metadata"]["extractor"] == "builtin"
    assert asset_json(cli, cast, "maggie")["name"] == "MARGARET"  # by alias
    assert asset_json(cli, cast, str(aid))["name"] == "LANTERN"  # by id


def test_show_text(cast, cli):
    r = cli("show", "MARGARET", "-p", cast)
    assert r.exit_code == 0, r.output
    for needle in ("MARGARET", "MAGGIE", "blue coat", "conflicts", "arrives in a red coat"):
        assert needle in r.stdout


def test_unknown_name_suggests(cast, cli):
    err = assert_refused(cli, cast, ["show", "MARGRET"], 2, "did you mean")
    assert "MARGARET" in err
    assert_refused(cli, cast, ["edit", "MARGRET", "--priority"], 2, "did you mean")


def test_ambiguous_name(cast, cli):
    p = open_project(cast)
    with atomic(p.db):
        for kind in ("prop", "location"):
            store.insert_asset(p, name="KEY", asset_type=kind)
    close_all()
    err = assert_refused(cli, cast, ["show", "key"], 2, "ambiguous")
    assert "prop" in err and "location" in err
    assert_refused(cli, cast, ["remove", "KEY", "--yes"], 2, "ambiguous")


# ---- edit --------------------------------------------------------------------------------


def test_edit_flags_mark_user_fields_and_undo(cast, cli):
    before = db_state(cast)
    r = cli("edit", "MOM", "--name", "MARGARET'S MOTHER", "--description", "A stooped woman in a grey apron.",
            "--add-alias", "GRAN", "--remove-alias", "MOTHER", "--no-priority", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "GRAN")
    assert d["name"] == "MARGARET'S MOTHER"
    assert d["description"] == "A stooped woman in a grey apron."
    assert d["aliases"] == ["GRAN", "MOM"]  # the old name stays findable
    assert set(d["user_fields"]) == {"name", "description", "aliases"}
    assert events(cast)[-1] == ("edit", 0)
    undo_restores(cli, cast, before)
    assert events(cast)[-1] == ("edit", 1)


def test_edit_type_and_priority(cast, cli):
    before = db_state(cast)
    assert cli("edit", "LANTERN", "--type", "location", "--priority", "-p", cast).exit_code == 0
    d = asset_json(cli, cast, "LANTERN")
    assert d["type"] == "location" and d["is_priority"] is True
    assert set(d["user_fields"]) == {"type", "is_priority"}
    undo_restores(cli, cast, before)


def test_edit_nothing_changed_records_nothing(cast, cli):
    before = table_dump(cast / "stage5.db")
    r = cli("edit", "LANTERN", "--description", "An old brass storm lantern.", "-p", cast)
    assert r.exit_code == 0 and "nothing changed" in r.stdout
    assert table_dump(cast / "stage5.db") == before


@pytest.mark.parametrize("args, code, needle", [
    (["edit", "LANTERN", "--type", "vehicle"], 2, "unknown type"),
    (["edit", "LANTERN", "--name", "   "], 2, "cannot be empty"),
    (["edit", "LANTERN", "--description", "x" * (store.MAX_DESCRIPTION + 1)], 2, "at most"),
    (["edit", "LANTERN", "--name", "maggie"], 2, "already names asset MARGARET"),
    (["edit", "MOM", "--add-alias", "Maggie"], 2, "merge"),
    (["edit", "MOM", "--remove-alias", "NOPE"], 2, "not an alias"),
    (["edit", "HARBOUR OFFICE", "--type", "prop", "--name", "lantern"], 2, "already names"),
    (["add", "LAMP", "--type", "vehicle"], 2, "unknown type"),
    (["add", "", "--type", "prop"], 2, "cannot be empty"),
    (["add", "LAMP", "--type", "prop", "-d", "y" * (store.MAX_DESCRIPTION + 1)], 2, "at most"),
    (["add", "lantern", "--type", "prop"], 2, "already exists"),
    (["add", "NEW ONE", "--type", "character", "--alias", "MAGGIE"], 2, "already exists"),
])
def test_bad_input_refused(cast, cli, args, code, needle):
    assert_refused(cli, cast, args, code, needle)


def test_locked_asset_and_stage_refused(cast, cli):
    set_locked(cast, "MARGARET")
    for args in (["edit", "MARGARET", "--priority"], ["edit", "MARGARET"], ["remove", "MARGARET", "--yes"],
                 ["merge", "MARGARET", "MOM", "--yes"], ["merge", "MOM", "MARGARET", "--yes"],
                 ["conflicts", "MARGARET", "--resolve", "A grey coat."], ["describe", "MARGARET"]):
        assert_refused(cli, cast, args, 3, "stage5 unlock", "MARGARET")
    lock_stage(cast)
    for args in (["edit", "LANTERN", "--priority"], ["add", "CUP", "--type", "prop"],
                 ["remove", "LANTERN", "--yes"], ["merge", "LANTERN", "HARBOUR OFFICE", "--force", "--yes"]):
        assert_refused(cli, cast, args, 3, "stage 5 is locked", "branch create")


# ---- edit in $EDITOR ---------------------------------------------------------------------


def editor(tmp_path: Path, body: str, name: str = "ed.py") -> str:
    """An EDITOR: a Python script given the file path as argv[1]."""
    path = tmp_path / name
    path.write_text(f"import sys, pathlib\nf = pathlib.Path(sys.argv[1])\ntext = f.read_text()\n{body}\n")
    return f"{sys.executable} {path}"


@pytest.fixture
def no_visual(monkeypatch):
    monkeypatch.delenv("VISUAL", raising=False)


def test_editor_applies_a_valid_edit(cast, cli, tmp_path, no_visual):
    ed = editor(tmp_path, "f.write_text(text.replace('An old brass storm lantern.', "
                          "'A dented tin lantern.').replace('is_priority: false', 'is_priority: true'))")
    before = db_state(cast)
    r = cli("edit", "LANTERN", "-p", cast, env={"EDITOR": ed})
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "LANTERN")
    assert d["description"] == "A dented tin lantern." and d["is_priority"] is True
    assert set(d["user_fields"]) == {"description", "is_priority"}
    undo_restores(cli, cast, before)


def test_editor_invalid_then_fixed(cast, cli, tmp_path, no_visual):
    counter = tmp_path / "n"
    ed = editor(tmp_path, f"""
c = pathlib.Path({str(counter)!r})
n = int(c.read_text()) if c.exists() else 0
c.write_text(str(n + 1))
if n == 0:
    f.write_text(text.replace('type: prop', 'type: spaceship'))
else:
    assert text.startswith('# error:'), text
    f.write_text(text.replace('type: spaceship', 'type: location'))
""")
    r = cli("edit", "LANTERN", "-p", cast, input="y\n", env={"EDITOR": ed})
    assert r.exit_code == 0, r.output
    assert "unknown type" in r.stdout
    assert asset_json(cli, cast, "LANTERN")["type"] == "location"


@pytest.mark.parametrize("body, needle", [
    ("f.write_text(text.replace('type: prop', 'type: spaceship'))", "unknown type"),
    ("f.write_text('name: [unclosed')", "not valid YAML"),
    ("f.write_text(text.replace('name: LANTERN', 'name: \"  \"'))", "cannot be empty"),
    ("f.write_text(text + 'colour: red\\n')", "colour"),
    ("f.write_text(text.replace('name: LANTERN', 'name: MARGARET'))", "already names"),
])
def test_editor_invalid_then_abort_changes_nothing(cast, cli, tmp_path, no_visual, body, needle):
    err = assert_refused(cli, cast, ["edit", "LANTERN"], 2, "edit aborted", "nothing changed",
                         input="n\n", env={"EDITOR": editor(tmp_path, body)})
    assert needle in err


def test_editor_missing_or_failing(cast, cli, tmp_path, no_visual):
    assert_refused(cli, cast, ["edit", "LANTERN"], 2, "not found",
                   env={"EDITOR": str(tmp_path / "no-such-editor")})
    assert_refused(cli, cast, ["edit", "LANTERN"], 1, "exited with status 3",
                   env={"EDITOR": editor(tmp_path, "f.write_text('junk'); sys.exit(3)")})
    assert_refused(cli, cast, ["edit", "LANTERN"], 2, "no editor", env={"EDITOR": ""})


def test_editor_saved_unchanged(cast, cli, tmp_path, no_visual):
    before = table_dump(cast / "stage5.db")
    r = cli("edit", "LANTERN", "-p", cast, env={"EDITOR": editor(tmp_path, "pass")})
    assert r.exit_code == 0 and "nothing changed" in r.stdout
    assert table_dump(cast / "stage5.db") == before


# ---- add / remove ------------------------------------------------------------------------


def test_add_manual_asset_and_undo(cast, cli):
    before = db_state(cast)
    r = cli("add", "Pocket Watch", "--type", "prop", "-d", "A silver pocket watch.", "--alias", "WATCH",
            "--priority", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "watch")
    assert (d["name"], d["origin"], d["aliases"], d["is_priority"]) == (
        "Pocket Watch", "manual", ["WATCH"], True)
    assert {"name", "type", "description", "aliases", "is_priority"} <= set(d["user_fields"])
    undo_restores(cli, cast, before)
    assert cli("show", "watch", "-p", cast).exit_code == 2


def _give_image(root: Path, name: str, fname: str) -> Path:
    img = root / "images" / fname
    img.write_bytes(b"\x89PNG fake")
    conn = sqlite3.connect(root / "stage5.db")
    aid = conn.execute("SELECT id FROM project_assets WHERE name = ?", [name]).fetchone()[0]
    conn.execute("UPDATE project_assets SET image_key_url = ? WHERE id = ?", [f"images/{fname}", aid])
    conn.execute("INSERT INTO image_generation_jobs (asset_id, status, backend, prompt, width, height,"
                 " image_path, created_at) VALUES (?, 'done', 'placeholder', 'p', 64, 64, ?, 'now')",
                 [aid, f"images/{fname}"])
    conn.commit()
    conn.close()
    return img


def test_remove_confirms_trashes_images_and_undo_restores(cast, cli):
    img = _give_image(cast, "LANTERN", "lantern.png")
    before = db_state(cast)
    r = cli("remove", "LANTERN", "-p", cast, input="n\n", env={"STAGE5_ASSUME_TTY": "1"})
    assert r.exit_code == 1 and img.is_file()
    assert db_state(cast) == before
    r = cli("remove", "LANTERN", "harbour office", "-p", cast, input="y\n", env={"STAGE5_ASSUME_TTY": "1"})
    assert r.exit_code == 0, r.output
    assert not img.exists()
    trashed = list((cast / "images" / ".trash").iterdir())
    assert len(trashed) == 1 and trashed[0].read_bytes() == b"\x89PNG fake"
    assert q(cast, "SELECT count(*) FROM project_assets WHERE name IN ('LANTERN', 'HARBOUR OFFICE')") == [(0,)]
    assert q(cast, "SELECT count(*) FROM image_generation_jobs") == [(0,)]
    undo_restores(cli, cast, before)
    assert img.read_bytes() == b"\x89PNG fake"
    assert list((cast / "images" / ".trash").iterdir()) == []


def test_remove_keeps_an_image_another_branch_uses(cast, cli):
    img = _give_image(cast, "LANTERN", "lantern.png")
    assert cli("branch", "create", "alt", "-p", cast).exit_code == 0  # copies image_key_url
    assert cli("remove", "LANTERN", "--yes", "-p", cast).exit_code == 0
    assert img.is_file()
    cli("branch", "switch", "main", "-p", cast)
    assert asset_json(cli, cast, "LANTERN")["image_exists"] is True


# ---- merge -------------------------------------------------------------------------------


def test_merge_unions_and_undo(cast, cli):
    _give_image(cast, "MOM", "mom.png")
    before = db_state(cast)
    r = cli("merge", "MARGARET", "mom", "--yes", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "MARGARET")
    assert d["aliases"] == ["MAGGIE", "MOM", "MOTHER"]
    assert d["scenes"] == [1, 2, 3, 4, 5]
    contexts = [(m["scene_number"], m["context"]) for m in d["mentions"]]
    assert contexts == [(1, C1), (2, C2), (3, C3), (4, C4), (5, C5)]  # scene 4 deduplicated
    assert d["description"].startswith("A woman in her fifties")
    assert d["has_conflicts"] and DETAILS in d["conflict_details"]
    assert "MOM: apron is white or grey" in d["conflict_details"]
    assert d["metadata"]["merged_from"] == ["MOM"]
    assert [j["image_path"] for j in d["jobs"]] == ["images/mom.png"]  # job history kept
    assert cli("show", "mother", "--json", "-p", cast).exit_code == 0  # the source's alias
    assert q(cast, "SELECT count(*) FROM project_assets WHERE name = 'MOM'") == [(0,)]
    undo_restores(cli, cast, before)


def test_merge_description_from_and_force(cast, cli):
    r = cli("merge", "MARGARET", "MOM", "--description-from", "MOM", "--yes", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "MARGARET")
    assert d["description"] == "A tired mother at the stove." and "description" in d["user_fields"]
    assert_refused(cli, cast, ["merge", "HARBOUR OFFICE", "LANTERN", "--yes"], 2, "--force")
    assert cli("merge", "HARBOUR OFFICE", "LANTERN", "--force", "--yes", "-p", cast).exit_code == 0
    assert asset_json(cli, cast, "LANTERN")["name"] == "HARBOUR OFFICE"


def test_merge_refusals(cast, cli):
    assert_refused(cli, cast, ["merge", "MARGARET", "maggie", "--yes"], 2, "into itself")
    assert_refused(cli, cast, ["merge", "MARGARET", "--yes"], 2)
    assert_refused(cli, cast, ["merge", "MARGARET", "MOM", "--description-from", "LANTERN", "--yes"], 2,
                   "--description-from")
    assert_refused(cli, cast, ["merge", "MARGARET", "MOMM", "--yes"], 2, "did you mean")
    assert_refused(cli, cast, ["merge", "MARGARET", "MOM"], 1, input="n\n",
                   env={"STAGE5_ASSUME_TTY": "1"})
    err = assert_refused(cli, cast, ["merge", "MARGARET", "MOM"], 2)
    assert "not a terminal: pass --yes" in err
    err = assert_refused(cli, cast, ["remove", "MOM"], 2)
    assert "not a terminal: pass --yes" in err
    set_locked(cast, "MOM")
    assert_refused(cli, cast, ["merge", "MARGARET", "MOM", "--yes"], 3, "unlock", "MOM")


# ---- re-extraction keeps user edits and merges ----------------------------------------------


def _reextract(root: Path) -> dict:
    p = open_project(root)
    try:
        return store.save_extraction(p, cast_assets(), extractor="builtin", model=None,
                                      script_path="harbour.fountain", script_sha256="1" * 64)
    finally:
        close_all()


def test_reextraction_keeps_edits(cast, cli):
    cli("edit", "MARGARET", "--description", "Silver hair, grey coat.", "--remove-alias", "MAGGIE",
        "--no-priority", "-p", cast)
    cli("edit", "LANTERN", "--name", "STORM LAMP", "-p", cast)
    _reextract(cast)
    d = asset_json(cli, cast, "MARGARET")
    assert d["description"] == "Silver hair, grey coat."
    assert d["aliases"] == [] and d["is_priority"] is False
    lamp = asset_json(cli, cast, "LANTERN")  # found through the old name, not re-created
    assert lamp["name"] == "STORM LAMP" and lamp["description"] == "An old brass storm lantern."
    assert q(cast, "SELECT count(*) FROM project_assets WHERE name = 'LANTERN'") == [(0,)]


def test_reextraction_after_merge_does_not_recreate_sources(cast, cli):
    assert cli("merge", "MARGARET", "MOM", "--description-from", "MOM", "--yes", "-p", cast).exit_code == 0
    report = _reextract(cast)
    assert "MOM" not in report["added"]
    names = [r[0] for r in q(cast, "SELECT name FROM project_assets ORDER BY name")]
    assert names == ["HARBOUR OFFICE", "LANTERN", "MARGARET"]
    d = asset_json(cli, cast, "MARGARET")
    assert d["description"] == "A tired mother at the stove."
    assert {"MOM", "MOTHER", "MAGGIE"} <= set(d["aliases"])
    assert d["metadata"]["merged_from"] == ["MOM"]


# ---- conflicts -----------------------------------------------------------------------------


def test_conflicts_list(cast, cli):
    r = cli("conflicts", "--json", "-p", cast)
    assert r.exit_code == 0, r.output
    rows = {c["name"]: c for c in json.loads(r.stdout)}
    assert set(rows) == {"MARGARET", "MOM"}
    assert rows["MARGARET"]["conflict_details"] == DETAILS
    assert rows["MARGARET"]["scenes_involved"] == [1, 2, 4, 5]
    text = cli("conflicts", "-p", cast).stdout
    assert "MARGARET" in text and "red in scene 5" in text


def test_conflicts_suggest_offline_majority(cast, cli):
    before = table_dump(cast / "stage5.db")
    r = cli("conflicts", "MARGARET", "--suggest", "--json", "-p", cast)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["method"] == "majority" and s["chosen"] == "blue" and s["attribute"] == "coat"
    assert {x["text"]: x["scenes"] for x in s["readings"]} == {"blue": [1, 2, 4], "red": [5]}
    assert "blue" in s["reasoning"] and "3 scene" in s["reasoning"]
    assert table_dump(cast / "stage5.db") == before  # a suggestion changes nothing


def test_find_readings_from_llm_style_details():
    from stage5cli.conflicts import find_readings

    mentions = [{"scene_number": 3, "text": "ANNA", "context": "Anna enters."},
                {"scene_number": 9, "text": "ANNA", "context": "Anna in a green scarf."}]
    noun, readings = find_readings("scarf is red in scene 3 and green in scene 9", mentions, "ANNA")
    assert noun == "scarf"
    assert [(r.text, r.scenes) for r in readings] == [("red", [3]), ("green", [9])]
    assert find_readings("", [], "ANNA") == (None, [])
    # nothing in the details: one noun with two values in the quotes
    mentions.append({"scene_number": 4, "text": "ANNA", "context": "A red scarf flutters."})
    noun, readings = find_readings("inconsistent", mentions, "ANNA")
    assert noun == "scarf" and {r.text: r.scenes for r in readings} == {"green": [9], "red": [4]}


def test_conflicts_tie_uses_main_scene_then_latest(cast, cli):
    p = open_project(cast)
    with atomic(p.db):
        aid = store.insert_asset(
            p, name="BOAT", asset_type="prop", description="A red boat.",
            metadata={"aliases": [], "user_fields": [], "has_conflicts": True,
                      "conflict_details": "the boat is red in scene 2 and green in scene 6"},
            mentions=[{"scene_number": 2, "text": "BOAT", "context": "A red boat bobs."},
                      {"scene_number": 6, "text": "BOAT", "context": "The green boat sinks."},
                      {"scene_number": 6, "text": "boat", "context": "Water floods the boat."}])
    close_all()
    s = json.loads(cli("conflicts", str(aid), "--json", "-p", cast).stdout)
    assert (s["method"], s["chosen"]) == ("main-scene", "green")
    assert "scene 6" in s["reasoning"]
    assert s["description"] == "A green boat."


def test_conflicts_apply_and_resolve_with_undo(cast, cli):
    before = db_state(cast)
    r = cli("conflicts", "MARGARET", "--apply", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "MARGARET")
    assert not d["has_conflicts"] and "red" not in d["description"] and "blue coat" in d["description"]
    res = d["metadata"]["conflict_resolution"]
    assert res["by"] == "suggestion" and res["method"] == "majority" and res["details"] == DETAILS
    assert "description" in d["user_fields"]
    undo_restores(cli, cast, before)
    r = cli("conflicts", "MOM", "--resolve", "A white apron, always.", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "MOM")
    assert d["description"] == "A white apron, always." and not d["has_conflicts"]
    assert d["metadata"]["conflict_resolution"]["by"] == "user"
    assert cli("conflicts", "--json", "-p", cast).stdout.count('"name"') == 1
    undo_restores(cli, cast, before)


def test_resolution_survives_reextraction(cast, cli):
    cli("conflicts", "MARGARET", "--resolve", "Always the blue coat.", "-p", cast)
    _reextract(cast)
    d = asset_json(cli, cast, "MARGARET")
    assert d["description"] == "Always the blue coat." and not d["has_conflicts"]


def test_conflicts_bad_use(cast, cli):
    assert_refused(cli, cast, ["conflicts", "LANTERN", "--suggest"], 2, "no recorded conflicts")
    assert_refused(cli, cast, ["conflicts", "--suggest"], 2, "need an ASSET")
    assert_refused(cli, cast, ["conflicts", "MARGARET", "--apply", "--resolve", "x"], 2, "either")
    assert_refused(cli, cast, ["conflicts", "MARGARET", "--resolve", "  "], 2, "non-empty")
    assert_refused(cli, cast, ["conflicts", "MARGARET", "--resolve", "z" * (store.MAX_DESCRIPTION + 1)],
                   2, "at most")


@pytest.mark.slow  # imports litellm (about 2 s)
def test_conflicts_suggest_and_apply_with_llm(cast, cli):
    from tests.fake_llm import FakeLLM

    before = db_state(cast, "llm_calls")
    with FakeLLM() as llm:
        args = ["--model", "openai/fake", "--api-base", llm.api_base, "-p", cast]
        r = cli("conflicts", "MARGARET", "--suggest", "--json", *args)
        assert r.exit_code == 0, r.output
        s = json.loads(r.stdout)
        assert s["method"] == "llm" and s["model"] == "openai/fake"
        assert s["description"].startswith("MARGARET is seen") and "MARGARET" in s["reasoning"]
        assert len(llm.requests) == 1
        assert "red in scene 5" in llm.requests[0].json["messages"][-1]["content"]
        r = cli("conflicts", "MARGARET", "--apply", *args)
        assert r.exit_code == 0, r.output
        assert len(llm.requests) == 1  # the same answer, from the cache
    d = asset_json(cli, cast, "MARGARET")
    assert d["description"] == s["description"] and not d["has_conflicts"]
    assert d["metadata"]["conflict_resolution"]["model"] == "openai/fake"
    undo_restores(cli, cast, before, "llm_calls")


# ---- describe ------------------------------------------------------------------------------


@pytest.mark.slow  # imports litellm (about 2 s)
def test_describe_with_llm_and_undo(cast, cli):
    from tests.fake_llm import FakeLLM

    before = db_state(cast, "llm_calls")
    with FakeLLM() as llm:
        r = cli("describe", "LANTERN", "--model", "openai/fake", "--api-base", llm.api_base,
                "--instructions", "It is painted green.", "-p", cast)
        assert r.exit_code == 0, r.output
        sent = llm.requests[0].json["messages"][-1]["content"]
        assert "It is painted green." in sent and "Asset: LANTERN" in sent
    d = asset_json(cli, cast, "LANTERN")
    assert d["description"].startswith("LANTERN is seen in clear, even light.")
    assert "before" in r.stdout and "An old brass storm lantern." in r.stdout
    assert d["metadata"]["described_by"]["model"] == "openai/fake"
    assert "description" in d["user_fields"]
    assert q(cast, "SELECT count(*) FROM llm_calls WHERE response IS NOT NULL")[0][0] >= 1
    payload = json.loads(q(cast, "SELECT payload FROM events ORDER BY id DESC LIMIT 1")[0][0])
    assert payload["before"]["assets"][0]["description"] == "An old brass storm lantern."
    undo_restores(cli, cast, before, "llm_calls")


def test_describe_offline(cast, cli):
    before = db_state(cast)
    r = cli("describe", "MARGARET", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "MARGARET")
    assert d["description"] and not d["description"].startswith("A woman in her fifties")
    assert "fifties" in d["description"]  # read from the script
    assert d["metadata"]["described_by"]["extractor"] == "builtin"
    assert "A woman in her fifties" in r.stdout  # old beside new
    undo_restores(cli, cast, before)
    # the same again gives the same text: nothing is recorded
    cli("describe", "MARGARET", "-p", cast)
    state = table_dump(cast / "stage5.db")
    r = cli("describe", "MARGARET", "-p", cast)
    assert r.exit_code == 0 and "nothing changed" in r.stdout
    assert table_dump(cast / "stage5.db") == state


def test_describe_offline_without_the_script(cast, cli):
    (cast.parent / "harbour.fountain").unlink()
    r = cli("describe", "MARGARET", "-p", cast)
    assert r.exit_code == 0, r.output
    d = asset_json(cli, cast, "MARGARET")
    assert "fifties" in d["description"]  # from the stored mention quotes


def test_describe_refusals(cast, cli):
    assert_refused(cli, cast, ["describe", "LANTRN"], 2, "did you mean")


def test_describe_needs_a_style(project, cli):
    p = open_project(project)
    with atomic(p.db):
        store.insert_asset(p, name="CUP", asset_type="prop")
    close_all()
    assert_refused(cli, project, ["describe", "CUP"], 3, "style lock")


def test_reextraction_keeps_a_retyped_asset(styled, cli):
    """A user who turns an extracted 'character' into a prop keeps it through re-extraction."""
    from stage5cli.db import close_all
    from stage5cli.models import ExtractedAsset, Mention
    from stage5cli.project import open_project
    from stage5cli.store import save_extraction

    wrong = ExtractedAsset(name="RED COAT", type="character", mentions=[Mention(scene_number=5)])
    p = open_project(styled)
    save_extraction(p, [wrong], extractor="builtin", model=None, script_path="s", script_sha256="x")
    close_all()
    assert cli("edit", "RED COAT", "--type", "prop", "-p", styled).exit_code == 0
    p = open_project(styled)
    report = save_extraction(p, [wrong], extractor="builtin", model=None, script_path="s",
                             script_sha256="x")
    close_all()
    assert report["added"] == []
    rows = json.loads(cli("review", "--json", "-p", styled).stdout)
    assert [(a["name"], a["type"], a["stale"]) for a in rows] == [("RED COAT", "prop", False)]


def test_curation_survives_re_extraction(styled, cli, tmp_path):
    """17.4: a removed asset stays removed on re-extraction ("skipped: removed by you") until
    --restore-removed; a merged source of another type maps to the target."""
    script = tmp_path / "truck.fountain"
    script.write_text(TRUCK_SCRIPT)
    assert cli("extract", script, "-p", styled).exit_code == 0
    names = {a["name"]: a for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    assert "TOM" in names and "PICKUP TRUCK" in names, names
    assert cli("remove", "TOM", "--yes", "-p", styled).exit_code == 0
    assert cli("add", "truck", "--type", "prop", "-p", styled).exit_code == 0
    r = cli("merge", "truck", "PICKUP TRUCK", "--force", "--yes", "-p", styled)
    assert r.exit_code == 0, r.output
    r = cli("extract", script, "-p", styled)
    assert r.exit_code == 0, r.output
    assert "skipped: removed by you: TOM" in r.stdout
    after = {a["name"]: a for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    assert "TOM" not in after and "PICKUP TRUCK" not in after, sorted(after)
    assert after["truck"]["type"] == "prop" and "PICKUP TRUCK" in after["truck"]["aliases"]
    r = cli("extract", script, "--restore-removed", "-p", styled)
    assert r.exit_code == 0 and "skipped" not in r.stdout, r.output
    assert "TOM" in {a["name"] for a in json.loads(cli("review", "--json", "-p", styled).stdout)}


def test_manual_add_links_the_scenes_that_name_it(styled, cli, tmp_path):
    """17.4: `add` links the scenes whose text names the asset or one of its aliases."""
    script = tmp_path / "s.fountain"
    script.write_text("INT. KITCHEN - DAY\n\nMARA opens the old Radio.\n\n"
                      "EXT. YARD - DAY\n\nRain.\n\nINT. KITCHEN - NIGHT\n\nThe wireless hums.\n")
    assert cli("extract", script, "-p", styled).exit_code == 0
    r = cli("add", "RADIO", "--type", "prop", "--alias", "wireless", "-p", styled)
    assert r.exit_code == 0, r.output
    d = json.loads(cli("show", "RADIO", "--json", "-p", styled).stdout)
    assert d["scenes"] == [1, 3], d["scenes"]
    assert any("opens the old Radio" in m["context"] for m in d["mentions"])
