"""Append-only numbered migrations, recorded in `_stage5_migrations`, applied on every open.

A MigrationSet is the ordered migrations of one kind of database: PROJECT here (stage5.db),
library.LIBRARY for library.db; `@PROJECT.migration` appends one. Never edit, rename or
reorder a migration that has shipped (databases record them by name): append a new one. A
database whose recorded migrations include one unknown here comes from a newer stage5 and is
refused untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

from .db import atomic, now
from .errors import UsageError

Migration = Callable[["sqlite_utils.Database"], None]
TABLE = "_stage5_migrations"  # in every stage5 database, a project's or the library's


class MigrationSet:
    """The append-only, ordered migrations of one kind of database; `label` names that kind
    in messages ("this project was written by a newer stage5")."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.steps: list[tuple[str, Migration]] = []

    def migration(self, fn: Migration) -> Migration:
        """Decorator: append `fn` as the next migration, recorded by its function name."""
        self.steps.append((fn.__name__, fn))
        return fn

    def names(self) -> list[str]:
        return [name for name, _ in self.steps]

    def migrate(self, db: sqlite_utils.Database, upto: int | None = None) -> list[str]:
        """Apply every migration not yet recorded, or only the first `upto`, in one
        transaction; return the names applied."""
        known = self.names()
        unknown = [n for n in applied(db) if n not in known]
        if unknown:
            raise UsageError(f"this {self.label} was written by a newer stage5 (migration "
                             f"{unknown[-1]}); upgrade stage5 to open it")
        done = set(applied(db))
        todo = [(n, f) for n, f in self.steps[: upto if upto is not None else len(self.steps)]
                if n not in done]
        if not todo:
            return []
        ran = []
        with atomic(db):
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
            )
            for name, fn in todo:
                fn(db)
                db.execute(f"INSERT INTO {TABLE} (name, applied_at) VALUES (?, ?)", [name, now()])
                ran.append(name)
        return ran

    def preflight(self, path: Path, *, allow_empty: bool = False) -> None:
        preflight(path, known=self.names(), label=self.label, allow_empty=allow_empty)


PROJECT = MigrationSet("project")


def applied(db: sqlite_utils.Database) -> list[str]:
    if TABLE not in db.table_names():
        return []
    return [r["name"] for r in db.query(f"SELECT name FROM {TABLE} ORDER BY id")]


def known_versions() -> list[str]:
    """The project migrations this stage5 knows, in order."""
    return PROJECT.names()


def migrate(db: sqlite_utils.Database, upto: int | None = None) -> list[str]:
    """Apply the project migrations not yet recorded (or only the first `upto`)."""
    return PROJECT.migrate(db, upto)


@PROJECT.migration
def m001_initial(db: sqlite_utils.Database) -> None:
    """The whole schema of DESIGN.md section 3."""
    db.execute(
        """
        CREATE TABLE project (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            project_uid TEXT NOT NULL,
            active_branch_id INTEGER,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE branches (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            parent_id INTEGER REFERENCES branches(id),
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE style_capsules (
            id INTEGER PRIMARY KEY,
            style_id TEXT NOT NULL,
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            body TEXT NOT NULL,
            source TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (style_id, sha256)
        )"""
    )
    db.execute(
        """
        CREATE TABLE stage_state (
            branch_id INTEGER PRIMARY KEY REFERENCES branches(id) ON DELETE CASCADE,
            stage INTEGER NOT NULL DEFAULT 5,
            status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'locked')),
            locked_visual_style_capsule_id INTEGER REFERENCES style_capsules(id),
            style_locked_at TEXT,
            script_path TEXT,
            script_sha256 TEXT,
            content TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute(
        """
        CREATE TABLE imported_styles (
            style_id TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            source TEXT,
            imported_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE project_assets (
            id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL REFERENCES branches(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            asset_type TEXT NOT NULL CHECK (asset_type IN ('character', 'prop', 'location')),
            description TEXT NOT NULL DEFAULT '',
            image_prompt TEXT,
            image_key_url TEXT,
            locked INTEGER NOT NULL DEFAULT 0,
            visual_style_capsule_id INTEGER REFERENCES style_capsules(id),
            voice_profile_id TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            origin TEXT NOT NULL DEFAULT 'extracted',
            stale INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_assets_branch ON project_assets(branch_id)")
    db.execute(
        """
        CREATE TABLE asset_mentions (
            id INTEGER PRIMARY KEY,
            asset_id INTEGER NOT NULL REFERENCES project_assets(id) ON DELETE CASCADE,
            scene_number INTEGER NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            context TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX idx_mentions_asset ON asset_mentions(asset_id)")
    db.execute(
        """
        CREATE TABLE image_generation_jobs (
            id INTEGER PRIMARY KEY,
            asset_id INTEGER REFERENCES project_assets(id) ON DELETE CASCADE,
            job_type TEXT NOT NULL DEFAULT 'image_key',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
            backend TEXT NOT NULL,
            model TEXT,
            prompt TEXT NOT NULL,
            negative_prompt TEXT,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            seed INTEGER,
            steps INTEGER,
            guidance REAL,
            style_capsule_id INTEGER REFERENCES style_capsules(id),
            style_sha256 TEXT,
            image_path TEXT,
            error TEXT,
            cost_usd REAL,
            metadata TEXT NOT NULL DEFAULT '{}',
            pid INTEGER,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        )"""
    )
    db.execute("CREATE INDEX idx_jobs_asset ON image_generation_jobs(asset_id)")
    db.execute("CREATE INDEX idx_jobs_status ON image_generation_jobs(status)")
    db.execute(
        """
        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY,
            cache_key TEXT NOT NULL,
            model TEXT NOT NULL,
            purpose TEXT NOT NULL,
            request TEXT NOT NULL,
            response TEXT,
            error TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost_usd REAL,
            latency_ms INTEGER,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX idx_llm_calls_cache ON llm_calls(cache_key)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            branch_id INTEGER,
            command TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            undone INTEGER NOT NULL DEFAULT 0
        )"""
    )


@PROJECT.migration
def m002_image_provenance(db: sqlite_utils.Database) -> None:
    """What made each asset's image key: its backend, a hash of the full recipe (prompt sent,
    negative prompt, style sha256, backend, model, size, seed, steps) and a hash of the asset
    inputs it was made from (name, type, description, style sha256), so a placeholder or a
    stale image can be told from a current one. Existing keys take their backend and recipe
    from the job that wrote them and are taken as current (their inputs are hashed as they are
    now). Frozen: the hash recipes below must never change (images.provenance uses the same)."""
    import hashlib
    import json

    def h(values: list) -> str:
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    for col in ("image_backend", "image_recipe_sha256", "image_source_sha256"):
        db.execute(f"ALTER TABLE project_assets ADD COLUMN {col} TEXT")
    rows = list(db.query(
        "SELECT a.id, a.name, a.asset_type, a.description, a.image_key_url, "
        "j.backend, j.model, j.prompt, j.negative_prompt, j.width, j.height, j.seed, j.steps, "
        "j.style_sha256 FROM project_assets a JOIN image_generation_jobs j ON j.id = ("
        "SELECT max(id) FROM image_generation_jobs WHERE asset_id = a.id AND status = 'done' "
        "AND image_path = a.image_key_url) WHERE a.image_key_url IS NOT NULL"))
    for r in rows:
        recipe = h([r["prompt"], r["negative_prompt"] or "", r["style_sha256"], r["backend"],
                    r["model"], r["width"], r["height"], r["seed"], r["steps"]])
        source = h([r["name"], r["asset_type"], r["description"] or "", r["style_sha256"]])
        db.execute("UPDATE project_assets SET image_backend = ?, image_recipe_sha256 = ?, "
                   "image_source_sha256 = ? WHERE id = ?", [r["backend"], recipe, source, r["id"]])


@PROJECT.migration
def m003_curation_records(db: sqlite_utils.Database) -> None:
    """What the user removed and merged, per branch, so re-extraction honours it: a removed
    asset stays removed; a merged source name (of any type) maps to the asset it went into.
    One row per (branch, kind, asset type, name key); `target_id` is the merge target."""
    db.execute(
        """
        CREATE TABLE curation_records (
            id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL REFERENCES branches(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('removed', 'merged')),
            asset_type TEXT NOT NULL,
            name_key TEXT NOT NULL,
            name TEXT NOT NULL,
            target_id INTEGER,
            created_at TEXT NOT NULL,
            UNIQUE (branch_id, kind, asset_type, name_key)
        )"""
    )


SQLITE_MAGIC = b"SQLite format 3\x00"


def preflight(path: Path, *, known: list[str], label: str, allow_empty: bool = False) -> None:
    """Look at a database file read-only before opening it for writing, so that a file that is
    not SQLite, a foreign SQLite database or one from a newer stage5 is refused untouched."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    if allow_empty and not head:
        return
    if head != SQLITE_MAGIC:
        raise UsageError(f"{path} is not a SQLite database (not a stage5 {label})")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if (names or not allow_empty) and TABLE not in names:
                # (an empty SQLite file is foreign too: stage5 never leaves one as a project)
                raise UsageError(f"{path} is a SQLite database but not a stage5 {label}")
            if TABLE in names:
                done = [r[0] for r in conn.execute(f"SELECT name FROM {TABLE} ORDER BY id")]
                unknown = [n for n in done if n not in known]
                if unknown:
                    raise UsageError(f"{path} was written by a newer stage5 (migration "
                                     f"{unknown[-1]}); upgrade stage5 to open it")
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{path} is corrupted or not a stage5 {label} ({e})") from None
