"""stage5 doctor: finds and (with --fix) repairs what is safe to repair."""

from __future__ import annotations

import json
import sqlite3

from tests.helpers import TRIO, add_assets


def _checks(r) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(r.stdout)["checks"]}


def test_healthy_project(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "--all", "-p", styled)
    r = cli("doctor", "--json", "-p", styled)
    assert r.exit_code == 0, r.output
    checks = _checks(r)
    assert checks["integrity_check"]["ok"] and checks["migrations"]["ok"]
    assert checks["LLM"]["detail"].startswith("no model configured")


def test_finds_and_fixes_problems(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "--all", "-p", styled)
    images = styled / "images"
    missing = sorted(images.glob("*.png"))[0]
    missing.unlink()
    (images / "stray.png").write_bytes(b"\x89PNG not ours")
    (images / ".x.png.999999999.abcd1234.tmp").write_bytes(b"half")
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute("INSERT INTO image_generation_jobs (asset_id, status, backend, prompt, width, height,"
                 " pid, created_at) VALUES (1, 'running', 'placeholder', 'p', 1, 1, 999999999, 'x')")
    conn.commit()
    conn.close()
    r = cli("doctor", "--json", "-p", styled)
    assert r.exit_code == 1
    checks = _checks(r)
    for name in ("stuck jobs", "missing images", "temporary files"):
        assert not checks[name]["ok"] and checks[name]["fixable"], name
    # a file no asset uses may be the user's: reported, never fixed (moved or deleted)
    assert "stray.png" in checks["unreferenced files"]["detail"]
    assert not checks["unreferenced files"]["fixable"]
    r = cli("doctor", "--fix", "--json", "-p", styled)
    assert r.exit_code == 0, r.output
    assert all(c["fixed"] for c in _checks(r).values() if not c["ok"])
    assert (images / "stray.png").read_bytes() == b"\x89PNG not ours"
    assert not list(images.glob(".*.tmp"))
    assert cli("doctor", "-p", styled).exit_code == 0
    # the asset whose image vanished is picked up again by generate --missing
    r = cli("generate", "--missing", "--json", "-p", styled)
    assert len(json.loads(r.stdout)["done"]) == 1


def test_reports_a_damaged_database(project, cli):
    db = project / "stage5.db"
    db.write_bytes(db.read_bytes()[:1500])
    for f in project.glob("stage5.db-*"):
        f.unlink()
    r = cli("doctor", "--json", "-p", project)
    assert r.exit_code == 1
    assert not _checks(r)["database"]["ok"]


def test_names_missing_key_variable_without_printing_keys(project, cli, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = cli("doctor", "--model", "openai/gpt-4o-mini", "--json", "-p", project)
    c = _checks(r)["LLM openai/gpt-4o-mini"]
    assert not c["ok"] and "OPENAI_API_KEY" in c["detail"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-visible-if-leaked-123456")
    r = cli("doctor", "--model", "openai/gpt-4o-mini", "-p", project)
    assert "sk-test-visible" not in r.output
