"""Migrations: a blank database, an upgrade from migration 1, a newer database refused."""

from __future__ import annotations

import sqlite3

import pytest

from stage5cli import migrations
from stage5cli.db import connect
from stage5cli.errors import UsageError
from tests.conftest import one_line_error

TABLES = {"project", "branches", "stage_state", "style_capsules", "imported_styles", "project_assets",
          "asset_mentions", "image_generation_jobs", "llm_calls", "events"}


def test_blank_database_gets_every_table(tmp_path):
    db = connect(tmp_path / "x.db", create=True)
    ran = migrations.migrate(db)
    assert ran == migrations.known_versions()
    assert TABLES <= set(db.table_names())
    assert migrations.migrate(db) == []  # applied once only
    cols = db["project_assets"].columns_dict
    for c in ("id", "branch_id", "name", "asset_type", "description", "image_prompt", "image_key_url",
              "locked", "visual_style_capsule_id", "voice_profile_id", "metadata", "created_at",
              "updated_at"):
        assert c in cols
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_upgrade_from_first_migration_equals_blank(tmp_path):
    fresh = connect(tmp_path / "fresh.db", create=True)
    migrations.migrate(fresh)
    old = connect(tmp_path / "old.db", create=True)
    migrations.migrate(old, upto=1)
    migrations.migrate(old)
    assert set(old.table_names()) == set(fresh.table_names())
    for t in fresh.table_names():
        assert old[t].columns_dict == fresh[t].columns_dict, t


def test_newer_database_refused_untouched(project, cli):
    conn = sqlite3.connect(project / "stage5.db")
    conn.execute("INSERT INTO _stage5_migrations (name, applied_at) VALUES ('m999_future', 'x')")
    conn.commit()
    conn.close()
    before = (project / "stage5.db").read_bytes()
    r = cli("status", "-p", project)
    assert r.exit_code == 2
    assert "newer stage5" in one_line_error(r)
    assert (project / "stage5.db").read_bytes() == before


def test_migrate_refuses_a_newer_database(tmp_path):
    db = connect(tmp_path / "n.db", create=True)
    migrations.migrate(db)
    db.execute("INSERT INTO _stage5_migrations (name, applied_at) VALUES ('m999', 'x')")
    with pytest.raises(UsageError):
        migrations.migrate(db)
