"""Export for the next stage: the gate, JSON against the published schema, YAML == JSON."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import jsonschema
import pytest
import yaml

import stage5cli.cli.commands.lock  # noqa: F401  (export)
from stage5cli import export
from stage5cli.db import close_all
from stage5cli.project import open_project
from stage5cli.store import AssetView
from tests.conftest import REPO, one_line_error, table_dump
from tests.helpers import TRIO, add_assets

EXTRA_ASSET_FIELDS = {"mentions", "image"}


@pytest.fixture
def locked(styled, cli) -> Path:
    add_assets(styled, TRIO, conflicts=("MARA",))
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    r = cli("lock-all", "--allow-placeholder", "--yes", "-p", styled)
    assert r.exit_code == 0, r.output
    return styled


def _set(root: Path, sql: str, args=()) -> None:
    conn = sqlite3.connect(root / "stage5.db")
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def _export(cli, root, *args) -> dict:
    r = cli("export", *args, "-p", root)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_json_validates_and_carries_every_field(locked, cli):
    doc = _export(cli, locked)
    jsonschema.validate(doc, export.schema())
    assert doc["schema_version"] == "1.0" and doc["draft"] is False
    status = json.loads(cli("status", "--json", "-p", locked).stdout)
    assert doc["stage"]["status"] == "locked" and doc["branch"] == status["branch"]
    assert doc["style"]["sha256"] == status["style"]["sha256"]
    assert doc["style"]["body"]["id"] == doc["style"]["id"] == "film-noir"
    review = json.loads(cli("review", "--json", "-p", locked).stdout)
    assert [a["id"] for a in doc["assets"]] == [a["id"] for a in review]
    for item, seen in zip(doc["assets"], review, strict=True):
        assert set(item) == set(AssetView.model_fields) | EXTRA_ASSET_FIELDS
        assert {k: item[k] for k in seen} == seen  # every field of review --json, same values
        img = item["image"]
        path = Path(img["path"])
        assert not path.is_absolute()  # relative to where the document is (here: the cwd)
        assert path.resolve() == (locked / item["image_key_url"]).resolve()
        assert img["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        from PIL import Image

        with Image.open(path) as im:
            assert (img["width"], img["height"]) == im.size
        assert img["style_sha256"] == doc["style"]["sha256"]
        assert item["locked"] is True
        assert item["mentions"] and item["mentions"][0]["scene_number"] in item["scenes"]
    mara = next(a for a in doc["assets"] if a["name"] == "MARA")
    assert mara["has_conflicts"] and "coat" in mara["conflict_details"]


def test_schema_lists_exactly_the_document_fields():
    s = export.schema()
    jsonschema.Draft202012Validator.check_schema(s)
    asset = s["$defs"]["asset"]
    assert set(asset["properties"]) == set(AssetView.model_fields) | EXTRA_ASSET_FIELDS
    assert set(asset["required"]) == set(asset["properties"])
    assert set(s["required"]) == set(s["properties"])


def test_schema_rejects_a_broken_document(locked, cli):
    doc = _export(cli, locked)
    for breakage in (lambda d: d.pop("style"), lambda d: d["assets"][0].pop("scenes"),
                     lambda d: d["assets"][0]["image"].update(sha256="nope"),
                     lambda d: d.update(schema_version="2.0")):
        bad = json.loads(json.dumps(doc))
        breakage(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, export.schema())


def test_schema_option_and_docs_publish_it(cli):
    r = cli("export", "--schema")
    assert r.exit_code == 0 and json.loads(r.stdout) == export.schema()
    doc = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    for field in set(AssetView.model_fields) | EXTRA_ASSET_FIELDS | set(export.schema()["properties"]):
        assert f"`{field}`" in doc, field


def test_draft_stage_is_refused_without_draft(styled, cli):
    add_assets(styled, TRIO)
    before = table_dump(styled / "stage5.db")
    r = cli("export", "-p", styled)
    assert r.exit_code == 3
    err = one_line_error(r)
    assert "not locked" in err and "--draft" in err and "lock-all" in err
    assert r.stdout == "" and table_dump(styled / "stage5.db") == before
    for fmt in ("yaml", "html"):
        out = styled.parent / f"out-{fmt}"
        r = cli("export", "--format", fmt, "--out", out, "-p", styled)
        assert r.exit_code == 3 and not out.exists()


def test_draft_export_is_marked_and_valid(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "MARA", "-p", styled)
    doc = _export(cli, styled, "--draft")
    jsonschema.validate(doc, export.schema())
    assert doc["draft"] is True and doc["stage"]["status"] == "draft"
    images = {a["name"]: a["image"] for a in doc["assets"]}
    assert images["MARA"] is not None and images["BRASS TELESCOPE"] is None


def test_draft_export_without_a_style(project, cli):
    add_assets(project, TRIO[:1])
    doc = _export(cli, project, "--draft")
    jsonschema.validate(doc, export.schema())
    assert doc["style"] is None


TRICKY = ["yes", "null", "1e3", "2024-01-01", "- a: b", "#not a comment", "tab\there\nnew line",
          "quote \" and ' both", "line\u2028separator", "ünïcødé ✓ 🎬", "  padded  ", "~", "0x1F",
          "on", "[1, 2]", "{a: b}", "&anchor *ref", "!tag", "%YAML", "@at", "`back`", "", "\\"]


def test_yaml_loads_to_exactly_the_json(locked, cli):
    for i, text in enumerate(TRICKY):
        _set(locked, "INSERT INTO asset_mentions (asset_id, scene_number, text, context) "
                     "VALUES (1, ?, ?, ?)", [100 + i, text, text[::-1]])
    _set(locked, "UPDATE project_assets SET description = ? WHERE id = 2", ["\n".join(TRICKY)])
    p = open_project(locked)
    doc = export.build_document(p)
    close_all()
    assert yaml.safe_load(export.to_yaml(doc)) == json.loads(export.to_json(doc)) == doc
    # and through the CLI, into files
    out = locked.parent / "out"
    assert cli("export", "-f", "yaml", "-o", out / "a.yaml", "-p", locked).exit_code == 0
    assert cli("export", "-f", "json", "-o", out / "a.json", "-p", locked).exit_code == 0
    y = yaml.safe_load((out / "a.yaml").read_text(encoding="utf-8"))
    j = json.loads((out / "a.json").read_text(encoding="utf-8"))
    assert y.pop("generated_at") and j.pop("generated_at")
    assert y == j
    assert sorted(x.name for x in out.iterdir()) == ["a.json", "a.yaml"]  # no temp files left


def test_stdout_and_file_are_the_same_document(locked, cli, monkeypatch):
    out = locked.parent / "export.json"
    r = cli("export", "--out", out, "-p", locked)
    assert r.exit_code == 0 and f"wrote {out}" in r.stdout
    a = json.loads(out.read_text(encoding="utf-8"))
    monkeypatch.chdir(locked.parent)  # `stage5 export > export.json` in the same folder
    b = _export(cli, locked)
    assert a.pop("generated_at") and b.pop("generated_at")
    assert a == b


@pytest.mark.parametrize("where", ["proc", "parent-is-file", "a-folder"])
def test_unwritable_out(locked, cli, tmp_path, where):
    if where == "proc":
        out = Path("/proc/stage5-out/export.json")
    elif where == "parent-is-file":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "export.json"
    else:
        out = tmp_path / "folder"
        out.mkdir()
    before = table_dump(locked / "stage5.db")
    r = cli("export", "--out", out, "-p", locked)
    assert r.exit_code == 2
    assert f"cannot write {out}" in one_line_error(r)
    assert table_dump(locked / "stage5.db") == before
    if where == "parent-is-file":
        assert (tmp_path / "plain").read_text() == "x"
    if where == "a-folder":
        assert list(out.iterdir()) == []


def test_missing_image_file_fails_a_locked_export(locked, cli):
    doc = _export(cli, locked)
    Path(doc["assets"][0]["image"]["path"]).unlink()
    r = cli("export", "-p", locked)
    assert r.exit_code == 1 and "is missing" in one_line_error(r)
    r = cli("export", "--draft", "-p", locked)  # a draft export still works, without that image
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["draft"] is True and doc["stage"]["status"] == "locked"
    assert doc["assets"][0]["image"] is None


def test_bad_format_and_html_without_out(locked, cli):
    r = cli("export", "--format", "pdf", "-p", locked)
    assert r.exit_code == 2 and "unknown format 'pdf'" in one_line_error(r)
    r = cli("export", "--format", "html", "-p", locked)
    assert r.exit_code == 2 and "--out DIR" in one_line_error(r)


def test_export_does_not_change_the_project(locked, cli):
    before = table_dump(locked / "stage5.db")
    _export(cli, locked)
    cli("export", "-f", "html", "-o", locked.parent / "sheet", "-p", locked)
    assert table_dump(locked / "stage5.db") == before


def test_write_export_for_the_demo(locked, tmp_path):
    p = open_project(locked)
    try:
        j = export.write_export(p, fmt="json", out=tmp_path / "e.json")
        h = export.write_export(p, fmt="html", out=tmp_path / "sheet")
    finally:
        close_all()
    assert json.loads(j.read_text())["schema_version"] == "1.0"
    assert h == tmp_path / "sheet" / "index.html" and h.is_file()


def test_exports_travel_and_use_the_umask(locked, cli, tmp_path):
    """17.8: paths relative to the export file's folder, the script relative to the project
    (with its sha256), files created 0644 under umask 022; the pair still works once moved."""
    import os
    import shutil
    import stat

    old = os.umask(0o022)
    try:
        out = locked.parent / "exports" / "export.json"
        r = cli("export", "--out", out, "-p", locked)
        assert r.exit_code == 0, r.output
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        y = locked.parent / "exports" / "export.yaml"
        assert cli("export", "--format", "yaml", "--out", y, "-p", locked).exit_code == 0
        assert stat.S_IMODE(y.stat().st_mode) == 0o644
    finally:
        os.umask(old)
    doc = json.loads(out.read_text())
    assert doc["project"]["path"] == "../" + locked.name
    script = doc["stage"]["script"]
    assert script is None or (not Path(script["path"]).is_absolute() and script["sha256"])
    moved = tmp_path / "elsewhere"
    shutil.copytree(locked.parent / "exports", moved / "exports")
    shutil.copytree(locked, moved / locked.name)
    for item in doc["assets"]:
        p = Path(item["image"]["path"])
        assert not p.is_absolute() and not str(p).startswith("/")
        img = moved / "exports" / p
        assert hashlib.sha256(img.read_bytes()).hexdigest() == item["image"]["sha256"]


FILE_FORMATS = ["json", "yaml"]  # (the breakdown formats and fdx need an extracted script)


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_export_out_through_a_symlink_keeps_the_link(locked, cli, tmp_path, fmt):
    """`export --out LINK` writes through a symlink to a file: the link stays a link and the
    file it points at gets the export (issue 14: it used to be renamed over)."""
    real = tmp_path / "kept" / f"real.{fmt}"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / f"link.{fmt}"
    link.symlink_to(real)
    r = cli("export", "--format", fmt, "--out", link, "-p", locked)
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and link.resolve() == real.resolve()
    text = real.read_text(encoding="utf-8")
    assert text != "old" and "MARA" in text.upper()
    assert sorted(p.name for p in real.parent.iterdir()) == [real.name]  # no temp file left


def _char_device(tmp_path: Path) -> Path:
    import os
    import stat

    if os.geteuid() != 0:
        pytest.skip("needs root (to write /dev/null or make a device node)")
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except OSError as e:
        pytest.skip(f"cannot make a device node here: {e}")
    return node


@pytest.mark.parametrize("where", ["dev-null", "own-device"])
@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_export_out_to_a_device_writes_to_it_and_keeps_it_a_device(locked, cli, tmp_path,
                                                                    where, fmt):
    """`export --out /dev/null` succeeds and leaves /dev/null a character device (it used to
    be replaced by a regular file when run as root)."""
    import os
    import stat

    if where == "dev-null":
        out = Path("/dev/null")
        if os.geteuid() != 0 or not os.access(out, os.W_OK):
            pytest.skip("needs root and a writable /dev/null")
    else:
        out = _char_device(tmp_path)
    r = cli("export", "--format", fmt, "--out", out, "-p", locked)
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(os.stat(out).st_mode)
    assert sorted(p.name for p in out.parent.iterdir() if ".tmp" in p.name) == []
