"""`stage5 doctor`: check a project and the environment; repair what is safe to repair."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import files as files_mod
from .db import atomic, now
from .errors import Stage5Error


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    fixable: bool = False
    fixed: bool = False


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, *a: Any, **k: Any) -> Check:
        c = Check(*a, **k)
        self.checks.append(c)
        return c

    @property
    def ok(self) -> bool:
        return all(c.ok or c.fixed for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


def check_project(root: Path, fix: bool, report: Report) -> None:
    from . import jobs, migrations
    from .project import DB_NAME, open_project

    if not (root / DB_NAME).is_file():
        report.add("project", False, f"no {DB_NAME} in {root}")
        return
    try:
        project = open_project(root)
    except Stage5Error as e:
        report.add("database", False, str(e))
        return
    db = project.db
    result = db.execute("PRAGMA integrity_check").fetchone()[0]
    report.add("integrity_check", result == "ok", result)
    fk = db.execute("PRAGMA foreign_key_check").fetchall()
    report.add("foreign keys", not fk, f"{len(fk)} dangling reference(s)" if fk else "ok")
    applied = migrations.applied(db)
    report.add("migrations", applied == migrations.known_versions(),
               f"{len(applied)} applied of {len(migrations.known_versions())}")
    check_rows(db, report)

    stuck = [r["id"] for r in db.query(
        "SELECT id, pid FROM image_generation_jobs WHERE status IN ('running', 'pending')")
        if not jobs.owner_alive(r["pid"])]
    c = report.add("stuck jobs", not stuck, f"{len(stuck)} job(s) left running by a dead process"
                   if stuck else "none", fixable=bool(stuck))
    if stuck and fix:
        jobs.recover_stuck(project)
        c.fixed = True

    referenced = {r[0] for r in db.execute(
        "SELECT image_key_url FROM project_assets WHERE image_key_url IS NOT NULL "
        "UNION SELECT image_path FROM image_generation_jobs WHERE image_path IS NOT NULL")}
    missing = [r for r in db.query(
        "SELECT id, name, image_key_url FROM project_assets WHERE image_key_url IS NOT NULL")
        if not (root / r["image_key_url"]).is_file()]
    c = report.add("missing images", not missing,
                   ", ".join(r["name"] for r in missing[:10]) or "none", fixable=bool(missing))
    if missing and fix:
        with atomic(db):
            for r in missing:
                db.execute("UPDATE project_assets SET image_key_url = NULL, updated_at = ? WHERE id = ?",
                           [now(), r["id"]])
        c.fixed = True
        c.detail += " (pointers cleared: run stage5 generate --missing)"

    images = project.images_dir
    if images.exists() and not files_mod.inside(root, images):
        report.add("images folder", False, f"{images} points outside the project folder "
                   f"({images.resolve()}): stage5 will not write or move files there")
        return
    entries = [p for p in images.iterdir() if p.is_file() and not p.is_symlink()] \
        if images.is_dir() else []
    temps = files_mod.stale_temp_files(images) if images.is_dir() else []
    orphans = [p for p in entries if p not in temps and f"images/{p.name}" not in referenced
               and not p.name.startswith(".")]
    c = report.add("temporary files", not temps, f"{len(temps)} left by an interrupted write"
                   if temps else "none", fixable=bool(temps))
    if temps and fix:
        files_mod.remove_stale_temp_files(images)
        c.fixed = True
    # Files no asset or job uses may be the user's (a mood board kept beside the images):
    # reported, never moved or deleted.
    names = ", ".join(p.name for p in orphans[:5]) + (" ..." if len(orphans) > 5 else "")
    report.add("unreferenced files", True, f"{len(orphans)} file(s) in images/ that no asset or "
               f"job uses (left alone): {names}" if orphans else "none")


# (table, column) pairs that hold JSON
JSON_COLUMNS = [("project_assets", "metadata"), ("image_generation_jobs", "metadata"),
                ("events", "payload"), ("stage_state", "content"), ("style_capsules", "body")]


def check_rows(db: Any, report: Report) -> None:
    """Rows edited by hand: the project row and its active branch, each branch's stage state,
    JSON columns that do not parse."""
    problems: list[str] = []
    rows = db.execute("SELECT active_branch_id FROM project").fetchall()
    if len(rows) != 1:
        problems.append(f"{len(rows)} project rows (expected 1)")
    elif not db.execute("SELECT 1 FROM branches WHERE id = ?", [rows[0][0]]).fetchone():
        problems.append(f"the active branch (id {rows[0][0]}) does not exist")
    missing = db.execute("SELECT name FROM branches WHERE id NOT IN "
                         "(SELECT branch_id FROM stage_state)").fetchall()
    if missing:
        problems.append("no stage state for branch " + ", ".join(repr(r[0]) for r in missing))
    tables = set(db.table_names())
    for table, col in JSON_COLUMNS:
        if table not in tables or col not in db[table].columns_dict:
            continue
        bad = db.execute(f"SELECT count(*) FROM [{table}] WHERE [{col}] IS NOT NULL AND [{col}] "
                         f"!= '' AND NOT json_valid([{col}])").fetchone()[0]
        if bad:
            problems.append(f"{bad} row(s) of {table}.{col} not valid JSON")
    report.add("rows", not problems, "; ".join(problems) or "ok")


def check_environment(report: Report, model: str | None) -> None:
    """The version, optional extras, and what the extractor --model / $STAGE5_MODEL names needs."""
    import platform

    from . import __version__

    report.add("version", True, f"stage5 {__version__} (Python {platform.python_version()})")
    for extra, modules in (("pdf", ["pypdf"]), ("diffusers", ["torch", "diffusers", "transformers"])):
        found = [m for m in modules if importlib.util.find_spec(m) is None]
        report.add(f"extra: {extra}", True,
                   "installed" if not found else f"not installed (pip install 'stage5[{extra}]')")
    from .extract.registry import resolve

    report.add(*resolve(model).check_environment())  # STAGE5_MODEL=builtin is no model name


def run(root: Path, *, fix: bool, model: str | None) -> Report:
    report = Report()
    check_project(root, fix, report)
    check_environment(report, model)
    return report
