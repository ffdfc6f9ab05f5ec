"""The global library: promote, library list/show/use/remove, its own migrations and its home."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

import stage5cli.cli.commands.library  # noqa: F401
from stage5cli import library
from stage5cli.db import close_all
from tests.conftest import one_line_error, table_dump
from tests.helpers import TRIO, add_assets


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _home() -> Path:
    return Path(os.environ["STAGE5_HOME"])


def _lib_dump() -> dict:
    path = _home() / library.DB_NAME
    return table_dump(path) if path.exists() else {}


def _review(cli, root) -> list[dict]:
    r = cli("review", "--json", "-p", root)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _one(root: Path, sql: str, args=()):
    conn = sqlite3.connect(root / "stage5.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@pytest.fixture
def made(styled, cli) -> Path:
    """A film-noir project with three assets and placeholder image keys."""
    add_assets(styled, TRIO)
    r = cli("generate", "--all", "-p", styled)
    assert r.exit_code == 0, r.output
    assert cli("lock-all", "--generated", "--allow-placeholder", "-p", styled).exit_code == 0
    return styled


@pytest.fixture
def second(tmp_path, cli):
    def make(style: str = "film-noir") -> Path:
        root = tmp_path / f"second-{style}"
        assert cli("init", root).exit_code == 0
        assert cli("style", "lock", style, "-p", root).exit_code == 0
        return root

    return make


def test_promote_list_show_use_round_trip(made, second, cli):
    r = cli("promote", "MARA", "brass telescope", "-p", made)
    assert r.exit_code == 0, r.output
    assert "added character MARA" in r.stdout and "added prop BRASS TELESCOPE" in r.stdout
    items = json.loads(cli("library", "list", "--json").stdout)
    assert [(i["name"], i["type"]) for i in items] == [("MARA", "character"),
                                                       ("BRASS TELESCOPE", "prop")]
    src = {a["name"]: a for a in _review(cli, made)}
    uid = _one(made, "SELECT project_uid FROM project")[0][0]
    style_id, style_sha = _one(made, "SELECT style_id, sha256 FROM style_capsules")[0]
    for i in items:
        a = src[i["name"]]
        assert i["promoted_from_project_id"] == uid
        assert i["promoted_from_asset_id"] == a["id"]
        assert (i["style_id"], i["style_sha256"]) == (style_id, style_sha)
        assert i["description"] == a["description"] and i["image_prompt"] == a["image_prompt"]
        lib_image = Path(i["image_path"])
        assert lib_image.parent == (_home() / "images").resolve()
        assert _sha(lib_image) == i["image_sha256"] == _sha(made / a["image_key_url"])
    shown = json.loads(cli("library", "show", "mara", "--json").stdout)
    assert shown == items[0]
    assert _one(made, "SELECT command FROM events WHERE command = 'promote'") == [("promote",)]

    other = second("film-noir")
    r = cli("library", "use", "MARA", "-p", other)
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr  # same style: nothing to warn about
    [used] = _review(cli, other)
    assert (used["name"], used["type"], used["origin"], used["locked"]) == (
        "MARA", "character", "library", False)
    assert used["description"] == src["MARA"]["description"]
    copied = other / used["image_key_url"]
    assert copied.parent == other / "images" and _sha(copied) == items[0]["image_sha256"]
    # the image is in the project's locked style, so the gatekeeper accepts it
    assert _one(other, "SELECT a.visual_style_capsule_id = s.locked_visual_style_capsule_id "
                       "FROM project_assets a, stage_state s") == [(1,)]
    meta = json.loads(_one(other, "SELECT metadata FROM project_assets")[0][0])
    assert meta["library"]["id"] == items[0]["id"]
    assert meta["library"]["promoted_from_project_id"] == uid
    assert _one(other, "SELECT command FROM events WHERE command = 'library use'") == [("library use",)]
    # a used asset can be locked and the stage exported like any other
    assert cli("lock-all", "--allow-placeholder", "-p", other).exit_code == 0


def test_use_warns_when_the_styles_differ(made, second, cli):
    cli("promote", "MARA", "-p", made)
    anime = second("anime")
    r = cli("library", "use", "mara", "--as", "Mara Senior", "-p", anime)
    assert r.exit_code == 0, r.output
    assert "warning:" in r.stderr and "film-noir" in r.stderr and "anime" in r.stderr
    [used] = _review(cli, anime)
    assert used["name"] == "Mara Senior" and "MARA" in used["aliases"]


def test_use_refuses_a_name_already_in_the_project(made, cli):
    cli("promote", "MARA", "-p", made)
    before, lib_before = table_dump(made / "stage5.db"), _lib_dump()
    images = sorted((made / "images").iterdir())
    r = cli("library", "use", "MARA", "-p", made)
    assert r.exit_code == 2
    assert "already has an asset named 'MARA'" in one_line_error(r) and "--as" in r.stderr
    assert table_dump(made / "stage5.db") == before and _lib_dump() == lib_before
    assert sorted((made / "images").iterdir()) == images
    r = cli("library", "use", "MARA", "--as", "mara", "-p", made)  # case-insensitive
    assert r.exit_code == 2 and table_dump(made / "stage5.db") == before


def test_use_unknown_name_suggests(made, second, cli):
    cli("promote", "MARA", "-p", made)
    other = second()
    before, lib_before = table_dump(other / "stage5.db"), _lib_dump()
    r = cli("library", "use", "MRA", "-p", other)
    assert r.exit_code == 2
    assert "did you mean: MARA" in one_line_error(r)
    assert table_dump(other / "stage5.db") == before and _lib_dump() == lib_before
    r = cli("library", "show", "nobody")
    assert r.exit_code == 2 and "no library asset named 'nobody'" in one_line_error(r)


def test_use_on_an_empty_library(second, cli):
    other = second()
    r = cli("library", "use", "MARA", "-p", other)
    assert r.exit_code == 2 and "library is empty" in one_line_error(r)
    assert not (_home() / library.DB_NAME).exists()  # reading never creates the library


def test_use_refused_on_a_locked_stage(made, second, cli):
    cli("promote", "MARA", "-p", made)
    other = second()
    conn = sqlite3.connect(other / "stage5.db")
    conn.execute("UPDATE stage_state SET status = 'locked'")
    conn.commit()
    conn.close()
    before = table_dump(other / "stage5.db")
    r = cli("library", "use", "MARA", "-p", other)
    assert r.exit_code == 3
    assert "branch create" in one_line_error(r)
    assert table_dump(other / "stage5.db") == before


def test_promote_without_an_image_is_refused_and_all_or_nothing(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "MARA", "-p", styled)
    cli("lock", "MARA", "-p", styled)
    before = table_dump(styled / "stage5.db")
    r = cli("promote", "MARA", "BRASS TELESCOPE", "-p", styled)
    assert r.exit_code == 3
    err = one_line_error(r)
    assert "'BRASS TELESCOPE' has no image key" in err and "stage5 generate" in err
    assert table_dump(styled / "stage5.db") == before
    assert not (_home() / library.DB_NAME).exists()


def test_promoting_an_unlocked_asset_is_refused(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "--all", "-p", styled)
    before = table_dump(styled / "stage5.db")
    r = cli("promote", "MARA", "-p", styled)
    assert r.exit_code == 3
    assert "is not locked" in one_line_error(r) and "stage5 lock MARA" in r.stderr
    assert table_dump(styled / "stage5.db") == before
    assert not (_home() / library.DB_NAME).exists()


def test_promote_with_the_image_file_gone(made, cli):
    [mara] = [a for a in _review(cli, made) if a["name"] == "MARA"]
    (made / mara["image_key_url"]).unlink()
    before = table_dump(made / "stage5.db")
    r = cli("promote", "MARA", "-p", made)
    assert r.exit_code == 3 and "no image file on disk" in one_line_error(r)
    assert table_dump(made / "stage5.db") == before


def test_promote_twice_needs_overwrite(made, cli):
    assert cli("promote", "MARA", "-p", made).exit_code == 0
    [first] = json.loads(cli("library", "list", "--json").stdout)
    before, lib_before = table_dump(made / "stage5.db"), _lib_dump()
    r = cli("promote", "mara", "-p", made)
    assert r.exit_code == 2 and "--overwrite" in one_line_error(r)
    assert table_dump(made / "stage5.db") == before and _lib_dump() == lib_before
    # a new image, then --overwrite: same library id, new image, the old file is gone
    assert cli("unlock", "MARA", "-p", made).exit_code == 0
    assert cli("generate", "MARA", "--seed", "99", "-p", made).exit_code == 0
    assert cli("lock", "MARA", "-p", made).exit_code == 0
    r = cli("promote", "MARA", "--overwrite", "-p", made)
    assert r.exit_code == 0 and "replaced character MARA" in r.stdout
    [again] = json.loads(cli("library", "list", "--json").stdout)
    assert again["id"] == first["id"] and again["created_at"] == first["created_at"]
    assert again["image_sha256"] != first["image_sha256"]
    assert Path(again["image_path"]).is_file() and not Path(first["image_path"]).exists()
    assert sorted(p.name for p in (_home() / "images").iterdir()) == [Path(again["image_path"]).name]


@pytest.mark.parametrize("kind", ["proc", "file"])
def test_unusable_home(made, cli, monkeypatch, tmp_path, kind):
    if kind == "proc":
        home = Path("/proc/stage5-home")
    else:
        home = tmp_path / "not-a-folder"
        home.write_text("x")
    monkeypatch.setenv("STAGE5_HOME", str(home))
    before = table_dump(made / "stage5.db")
    r = cli("promote", "MARA", "-p", made)
    assert r.exit_code == 2
    assert "STAGE5_HOME" in one_line_error(r)
    assert table_dump(made / "stage5.db") == before
    if kind == "file":
        assert home.read_text() == "x"
        r = cli("library", "list")
        assert r.exit_code == 2 and "STAGE5_HOME" in one_line_error(r)
    else:
        assert not home.exists()


def test_list_type_filter_and_bad_type(made, cli):
    assert json.loads(cli("library", "list", "--json").stdout) == []
    cli("promote", "MARA", "BRASS TELESCOPE", "LIGHTHOUSE LAMP ROOM", "-p", made)
    props = json.loads(cli("library", "list", "--type", "prop", "--json").stdout)
    assert [i["name"] for i in props] == ["BRASS TELESCOPE"]
    r = cli("library", "list", "--type", "vehicle")
    assert r.exit_code == 2 and "unknown type 'vehicle'" in one_line_error(r)
    table = cli("library", "list")
    assert table.exit_code == 0 and "LIGHTHOUSE LAMP ROOM" in table.stdout


def test_remove(made, second, cli):
    cli("promote", "MARA", "BRASS TELESCOPE", "-p", made)
    other = second()
    cli("library", "use", "MARA", "-p", other)
    lib_before = _lib_dump()
    r = cli("library", "remove", "MARA")  # no terminal, no --yes
    assert r.exit_code == 2 and "--yes" in one_line_error(r)
    assert _lib_dump() == lib_before
    [mara] = [i for i in json.loads(cli("library", "list", "--json").stdout) if i["name"] == "MARA"]
    r = cli("library", "remove", "mara", "--yes")
    assert r.exit_code == 0, r.output
    names = [i["name"] for i in json.loads(cli("library", "list", "--json").stdout)]
    assert names == ["BRASS TELESCOPE"]
    assert not Path(mara["image_path"]).exists()
    # the project that used it keeps its own copy
    [used] = _review(cli, other)
    assert (other / used["image_key_url"]).is_file()
    r = cli("library", "remove", "mara", "--yes")
    assert r.exit_code == 2 and "no library asset named 'mara'" in one_line_error(r)


def test_confirm_on_a_terminal(made, cli):
    cli("promote", "MARA", "-p", made)
    r = cli("library", "remove", "MARA", input="n\n", env={"STAGE5_ASSUME_TTY": "1"})
    assert r.exit_code == 1 and len(json.loads(cli("library", "list", "--json").stdout)) == 1
    r = cli("library", "remove", "MARA", input="y\n", env={"STAGE5_ASSUME_TTY": "1"})
    assert r.exit_code == 0 and json.loads(cli("library", "list", "--json").stdout) == []


def test_blank_library_schema(tmp_path):
    lib = library.open_library(create=True, root=tmp_path / "home")
    assert lib is not None
    cols = lib.db["global_assets"].columns_dict
    assert set(cols) == {
        "id", "name", "asset_type", "description", "image_prompt", "image_key_url", "image_sha256",
        "visual_style_capsule_id", "style_sha256", "style_name", "voice_profile_id",
        "promoted_from_project_id", "promoted_from_project_name", "promoted_from_asset_id",
        "aliases", "created_at", "updated_at"}
    assert [r["name"] for r in lib.db.query(f"SELECT name FROM {library.TABLE}")] == \
        library.known_versions()
    assert library.migrate(lib.db) == []  # idempotent
    lib.db["global_assets"].insert({"name": "A", "asset_type": "prop", "image_key_url": "x",
                                    "image_sha256": "y", "created_at": "t", "updated_at": "t"})
    with pytest.raises(sqlite3.IntegrityError):  # unique (name collate nocase, type)
        lib.db["global_assets"].insert({"name": "a", "asset_type": "prop", "image_key_url": "x",
                                        "image_sha256": "y", "created_at": "t", "updated_at": "t"})
    close_all()


def test_newer_library_is_refused_untouched(made, cli):
    cli("promote", "MARA", "-p", made)
    path = _home() / library.DB_NAME
    conn = sqlite3.connect(path)
    conn.execute(f"INSERT INTO {library.TABLE} (name, applied_at) VALUES ('lib999_future', 'x')")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _sha(path)
    for args in (["library", "list"], ["library", "use", "MARA", "-p", made],
                 ["promote", "BRASS TELESCOPE", "-p", made]):
        r = cli(*args)
        assert r.exit_code == 2, args
        assert "newer stage5" in one_line_error(r)
    assert _sha(path) == before


def test_foreign_file_as_library_is_refused(made, cli):
    (_home() / library.DB_NAME).write_text("not a database")
    r = cli("library", "list")
    assert r.exit_code == 2 and "not a SQLite database" in one_line_error(r)
    assert (_home() / library.DB_NAME).read_text() == "not a database"


def test_show_human_output_escapes_markup(made, cli):
    conn = sqlite3.connect(made / "stage5.db")
    conn.execute("UPDATE project_assets SET description = '[bold]not markup[/bold]' WHERE name = 'MARA'")
    conn.commit()
    conn.close()
    cli("promote", "MARA", "-p", made)
    r = cli("library", "show", "MARA")
    assert r.exit_code == 0 and "[bold]not markup[/bold]" in r.stdout


def test_library_list_shows_the_promoting_projects_folder_name(made, cli):
    """New rows record the project's folder name (lib002) and `library list` shows it; a row
    promoted before lib002 (no name) keeps showing the project's uid."""
    assert cli("promote", "MARA", "brass telescope", "-p", made).exit_code == 0
    items = {i["name"]: i for i in json.loads(cli("library", "list", "--json").stdout)}
    assert {i["promoted_from_project_name"] for i in items.values()} == {made.name}
    uid = items["MARA"]["promoted_from_project_id"]
    conn = sqlite3.connect(_home() / library.DB_NAME)
    conn.execute("UPDATE global_assets SET promoted_from_project_name = NULL WHERE name = 'MARA'")
    conn.commit()
    conn.close()
    rows = [line.split("\t") for line in cli("library", "list").stdout.splitlines()]
    header = rows[0]
    col = header.index("from project")
    by_name = {r[header.index("name")]: r[col] for r in rows[1:]}
    assert by_name == {"MARA": uid[:8], "BRASS TELESCOPE": made.name}
    assert made.name != uid[:8]


def test_lib002_migrates_an_old_library(tmp_path):
    """A library made before lib002 gains the column; its rows keep a NULL name."""
    lib = library.open_library(create=True, root=tmp_path / "home")
    assert lib is not None
    lib.db.execute("ALTER TABLE global_assets DROP COLUMN promoted_from_project_name")
    lib.db.execute(f"DELETE FROM {library.TABLE} WHERE name = 'lib002_project_name'")
    lib.db["global_assets"].insert({"name": "A", "asset_type": "prop", "image_key_url": "x",
                                    "image_sha256": "y", "promoted_from_project_id": "abc",
                                    "created_at": "t", "updated_at": "t"})
    assert library.migrate(lib.db) == ["lib002_project_name"]
    row = next(lib.db.query("SELECT * FROM global_assets"))
    assert row["promoted_from_project_name"] is None and row["promoted_from_project_id"] == "abc"
    close_all()
