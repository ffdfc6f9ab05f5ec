"""One definition of "ready": status, status --check, lock-all, review, show and the contact
sheet agree on a mixed project; placeholders and stale images block; undo restores exactly."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from stage5cli.readiness import assess
from tests.conftest import one_line_error, table_dump
from tests.helpers import add_assets

MIXED = [
    ("ANNA", "character", "A girl in a yellow raincoat."),  # missing
    ("BEN", "character", "A boy with a paper crown."),  # placeholder
    ("CLOCK", "prop", "A brass carriage clock."),  # stale (edited after generating)
    ("DOCKS", "location", "Fog over wooden docks."),  # off-style
    ("EEL TRAP", "prop", "A wicker eel trap."),  # failed
    ("FERRY", "location", "A rusty car ferry."),  # ok (a real backend), locked
    ("GULL", "character", "A one-legged herring gull."),  # ok, with a conflict
]
EXPECTED = {"ANNA": "missing", "BEN": "placeholder", "CLOCK": "stale", "DOCKS": "off-style",
            "EEL TRAP": "failed", "FERRY": "ok", "GULL": "ok"}


def _sql(root: Path, sql: str, args=()) -> None:
    conn = sqlite3.connect(root / "stage5.db")
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def _as_real(root: Path, *names: str) -> None:
    """Mark placeholder keys as if a real backend had made them (no GPU in tests)."""
    for n in names:
        _sql(root, "UPDATE project_assets SET image_backend = 'diffusers' WHERE name = ?", [n])


def _mixed(root: Path, cli) -> Path:
    add_assets(root, MIXED, conflicts=("GULL",))
    assert cli("generate", "BEN", "CLOCK", "DOCKS", "FERRY", "GULL", "-p", root).exit_code == 0
    assert cli("edit", "CLOCK", "-d", "A brass carriage clock with a cracked face.",
               "-p", root).exit_code == 0
    conn = sqlite3.connect(root / "stage5.db")
    other = conn.execute(
        "INSERT INTO style_capsules (style_id, name, sha256, body, source, created_at) "
        "SELECT 'anime', 'Anime', ?, body, 'test', created_at FROM style_capsules LIMIT 1",
        ["ab" * 32]).lastrowid
    conn.execute("UPDATE project_assets SET visual_style_capsule_id = ? WHERE name = 'DOCKS'",
                 [other])
    conn.execute("INSERT INTO image_generation_jobs (asset_id, status, backend, prompt, width, "
                 "height, error, created_at) SELECT id, 'failed', 'api', 'p', 512, 512, "
                 "'HTTP 500', 'x' FROM project_assets WHERE name = 'EEL TRAP'")
    conn.commit()
    conn.close()
    _as_real(root, "FERRY", "GULL")
    assert cli("lock", "FERRY", "-p", root).exit_code == 0
    return root


def test_every_view_agrees_on_a_mixed_project(styled, cli, tmp_path):
    from stage5cli.project import open_project

    root = _mixed(styled, cli)
    r = assess(open_project(root))
    assert {a.name: a.image_state for a in r.assets} == EXPECTED
    assert {a.name: a.state for a in r.assets}["FERRY"] == "locked"
    # review --json and show --json
    review = {a["name"]: a for a in json.loads(cli("review", "--json", "-p", root).stdout)}
    assert {n: a["image_state"] for n, a in review.items()} == EXPECTED
    assert review["BEN"]["image_backend"] == "placeholder"
    for name, state in EXPECTED.items():
        shown = json.loads(cli("show", name, "--json", "-p", root).stdout)
        assert shown["image_state"] == state, name
    # status --json: counts and blockers
    status = json.loads(cli("status", "--json", "-p", root).stdout)
    assert status["images"] == {"ok": 2, "placeholder": 1, "stale": 1, "off-style": 1,
                                "missing": 1, "failed": 1}
    assert status["assets"]["prop"] == {**status["assets"]["prop"], "total": 2, "with_image": 0,
                                        "image_stale": 1, "no_image": 1}
    assert sum(c["with_image"] for c in status["assets"].values()) == 3  # ok + placeholder
    groups = {g["cause"]: g["assets"] for g in status["blockers"]}
    assert groups == {"missing": ["ANNA"], "failed": ["EEL TRAP"], "off-style": ["DOCKS"],
                      "stale": ["CLOCK"], "placeholder": ["BEN"]}
    assert [g["cause"] for g in status["warnings"]] == ["conflicts"]
    # lock-all --json: the same groups; nothing changes
    before = table_dump(root / "stage5.db")
    locked = cli("lock-all", "--json", "-p", root)
    assert locked.exit_code == 3
    data = json.loads(locked.stdout)
    assert data["blockers"] == status["blockers"] and data["warnings"] == status["warnings"]
    assert table_dump(root / "stage5.db") == before
    # status --check: the same first cause in its one line
    check = cli("status", "--check", "-p", root)
    assert check.exit_code == 3
    assert "1 asset has no image: stage5 generate --missing" in one_line_error(check)
    # the contact sheet marks each card with the same state, and badges the placeholder
    assert cli("export", "--draft", "--format", "html", "--out", tmp_path / "sheet",
               "-p", root).exit_code == 0
    page = (tmp_path / "sheet" / "index.html").read_text()
    cards = dict(re.findall(r'data-asset-id="(\d+)" data-image-state="([a-z-]+)"', page))
    ids = {a["name"]: str(a["id"]) for a in review.values()}
    assert {n: cards[ids[n]] for n in EXPECTED} == EXPECTED
    assert '<span class="badge placeholder">placeholder</span>' in page
    assert '<span class="mark">placeholder</span>' in page
    assert "not final images" in page
    # and the JSON export carries it
    doc = json.loads(cli("export", "--draft", "-p", root).stdout)
    assert {a["name"]: a["image_state"] for a in doc["assets"]} == EXPECTED


def test_blockers_group_by_cause_with_one_fix(styled, cli):
    add_assets(styled, [(f"EXTRA {i}", "prop", "A crate.") for i in range(12)])
    r = cli("lock-all", "-p", styled)
    assert r.exit_code == 3
    assert one_line_error(r) == ("error: stage 5 cannot be locked: 12 assets have no image: "
                                 "stage5 generate --missing")
    table = r.stdout.split("Blocks stage 5")[1]
    assert table.count("stage5 generate") == 1


def test_placeholders_block_lock_all_without_the_flag(styled, cli):
    add_assets(styled, MIXED[:2])
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    before = table_dump(styled / "stage5.db")
    r = cli("lock-all", "-p", styled)
    assert r.exit_code == 3
    line = one_line_error(r)
    assert "2 image keys are placeholders" in line and "--allow-placeholder" in line
    assert table_dump(styled / "stage5.db") == before
    assert cli("lock-all", "--allow-placeholder", "-p", styled).exit_code == 0
    assert json.loads(cli("status", "--json", "-p", styled).stdout)["status"] == "locked"


def test_allow_placeholder_with_real_images_is_a_no_op(styled, cli, tmp_path):
    import shutil

    add_assets(styled, MIXED[:2])
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    _as_real(styled, "ANNA", "BEN")
    twin = tmp_path / "twin"
    shutil.copytree(styled, twin)
    a = cli("lock-all", "--json", "-p", styled)
    b = cli("lock-all", "--allow-placeholder", "--json", "-p", twin)
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.stdout)["locked"] == json.loads(b.stdout)["locked"] == ["ANNA", "BEN"]


def test_stale_images_are_found_regenerated_and_undo_restores_exactly(styled, cli):
    add_assets(styled, MIXED[:3])
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    fresh = table_dump(styled / "stage5.db")
    assert cli("edit", "BEN", "--name", "BENJAMIN", "-p", styled).exit_code == 0
    assert cli("edit", "CLOCK", "--type", "location", "-p", styled).exit_code == 0
    edited = table_dump(styled / "stage5.db")
    states = {a["name"]: a["image_state"]
              for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    assert states == {"ANNA": "placeholder", "BENJAMIN": "stale", "CLOCK": "stale"}
    # lock-all counts them as missing; --stale and --missing pick them up
    r = cli("lock-all", "--allow-placeholder", "--json", "-p", styled)
    assert r.exit_code == 3
    assert json.loads(r.stdout)["blockers"][0]["assets"] == ["BENJAMIN", "CLOCK"]
    dry = json.loads(cli("generate", "--stale", "--dry-run", "--json", "-p", styled).stdout)
    assert dry["images"] == 2
    out = json.loads(cli("generate", "--missing", "--json", "-p", styled).stdout)
    assert sorted(out["done"]) == ["BENJAMIN", "CLOCK"]
    assert cli("lock-all", "--allow-placeholder", "--json", "-p", styled).exit_code == 0
    # undo walks back exactly: the lock, the regeneration, then the edits
    for _ in range(2):
        assert cli("undo", "--yes", "-p", styled).exit_code == 0
    assert table_dump(styled / "stage5.db") | {"events": None} == edited | {"events": None}
    for _ in range(2):
        assert cli("undo", "--yes", "-p", styled).exit_code == 0
    assert table_dump(styled / "stage5.db") | {"events": None} == fresh | {"events": None}
    states = {a["name"]: a["image_state"]
              for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    assert set(states.values()) == {"placeholder"}


def test_unresolved_conflicts_need_yes_before_locking(styled, cli):
    add_assets(styled, MIXED[:2], conflicts=("ANNA",))
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    _as_real(styled, "ANNA", "BEN")
    before = table_dump(styled / "stage5.db")
    r = cli("lock-all", "-p", styled)  # no terminal here
    assert r.exit_code == 2
    line = one_line_error(r)
    assert "not a terminal: pass --yes" in line and "stage5 conflicts ANNA --apply" in line
    assert "unresolved visual conflict" in r.stdout  # warned before, not after
    assert table_dump(styled / "stage5.db") == before
    r = cli("lock-all", "--strict", "-p", styled)
    assert r.exit_code == 3 and "conflict" in one_line_error(r)
    r = cli("lock-all", "-p", styled, input="n\n", env={"STAGE5_ASSUME_TTY": "1"})
    assert r.exit_code != 0 and table_dump(styled / "stage5.db") == before
    r = cli("lock-all", "-p", styled, input="y\n", env={"STAGE5_ASSUME_TTY": "1"})
    assert r.exit_code == 0, r.output
    assert json.loads(cli("status", "--json", "-p", styled).stdout)["status"] == "locked"


def test_migration_backfills_provenance_of_existing_keys(styled, cli):
    from stage5cli.db import close_all
    from stage5cli.project import open_project

    add_assets(styled, MIXED[:2])
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    close_all()
    conn = sqlite3.connect(styled / "stage5.db")  # a project as stage5 wrote it before m002
    for col in ("image_backend", "image_recipe_sha256", "image_source_sha256"):
        conn.execute(f"ALTER TABLE project_assets DROP COLUMN {col}")
    conn.execute("DELETE FROM _stage5_migrations WHERE name = 'm002_image_provenance'")
    conn.commit()
    conn.close()
    p = open_project(styled)
    r = assess(p)
    assert {a.image_state for a in r.assets} == {"placeholder"}
    rows = list(p.db.query("SELECT image_backend, image_source_sha256 FROM project_assets"))
    assert all(x["image_backend"] == "placeholder" and len(x["image_source_sha256"]) == 64
               for x in rows)
    close_all()
