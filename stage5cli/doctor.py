"""`stage5 doctor`: check a project and the environment; repair what is safe to repair."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    files = [p for p in images.glob("*") if p.is_file()] if images.is_dir() else []
    temps = [p for p in files if ".tmp" in p.name or p.name.startswith(".")]
    orphans = [p for p in files if p not in temps and f"images/{p.name}" not in referenced]
    c = report.add("temporary files", not temps, f"{len(temps)} left by an interrupted write"
                   if temps else "none", fixable=bool(temps))
    if temps and fix:
        for p in temps:
            p.unlink(missing_ok=True)
        c.fixed = True
    c = report.add("orphan images", not orphans, f"{len(orphans)} file(s) no asset or job uses"
                   if orphans else "none", fixable=bool(orphans))
    if orphans and fix:
        project.trash_dir.mkdir(parents=True, exist_ok=True)
        for p in orphans:
            os.replace(p, project.trash_dir / p.name)
        c.fixed = True
        c.detail += f" (moved to {project.trash_dir})"


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
