"""extract records its script relative to the project folder, whatever the working folder;
a record from before (relative to where extract ran) stays readable."""

from __future__ import annotations

import json
import sqlite3

SCRIPT = "INT. KITCHEN - DAY\n\nMARA holds the BRASS KEY.\n\nMARA\nWhere?\n"


def _stored(root) -> str:
    conn = sqlite3.connect(root / "stage5.db")
    try:
        return conn.execute("SELECT script_path FROM stage_state").fetchone()[0]
    finally:
        conn.close()


def test_script_path_is_relative_to_the_project(styled, cli, tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "s.fountain").write_text(SCRIPT)
    monkeypatch.chdir(scripts)  # extract with a path relative to another folder
    assert cli("extract", "s.fountain", "-p", styled).exit_code == 0
    assert _stored(styled) == "../scripts/s.fountain"
    monkeypatch.chdir(tmp_path.parent)  # and read it from yet another
    status = json.loads(cli("status", "--json", "-p", styled).stdout)
    assert status["script"]["path"] == "../scripts/s.fountain"
    r = cli("show", "MARA", "--json", "-p", styled)
    assert r.exit_code == 0, r.output
    out = tmp_path / "exports" / "export.json"
    assert cli("export", "--draft", "--out", out, "-p", styled).exit_code == 0, "export"
    assert json.loads(out.read_text())["stage"]["script"]["path"] == "../scripts/s.fountain"


def test_an_old_cwd_relative_record_is_still_found(styled, cli, tmp_path, monkeypatch):
    from stage5cli.project import open_project, script_file

    (tmp_path / "s.fountain").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    assert cli("extract", "s.fountain", "-p", styled).exit_code == 0
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute("UPDATE stage_state SET script_path = 's.fountain'")  # as stage5 once stored it
    conn.commit()
    conn.close()
    p = open_project(styled)
    assert script_file(p, "s.fountain") == tmp_path / "s.fountain"
    assert script_file(p, "../s.fountain") == styled / "../s.fountain"
    assert script_file(p, None) is None
    out = tmp_path / "exports" / "export.json"
    assert cli("export", "--draft", "--out", out, "-p", styled).exit_code == 0
    assert json.loads(out.read_text())["stage"]["script"]["path"] == "../s.fountain"
