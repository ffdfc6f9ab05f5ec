"""Locking assets and the stage-5 gatekeeper (lock-all)."""

from __future__ import annotations

from typing import Any

from . import store
from .db import atomic, now
from .errors import BlockedError
from .project import Project, blockers


def set_locked(project: Project, refs: list[str], locked: bool) -> list[str]:
    """Lock or unlock the named assets in one transaction; returns the names changed."""
    if not locked and project.stage()["status"] == "locked":
        raise BlockedError(
            f"stage 5 is locked on branch {project.branch()['name']!r}: assets cannot be "
            "unlocked; run stage5 branch create NAME to change anything")
    rows = []
    seen = set()
    for ref in refs:
        r = store.resolve(project, ref)
        if r["id"] not in seen:
            seen.add(r["id"])
            rows.append(r)
    changed = [r for r in rows if bool(r["locked"]) != locked]
    if not changed:
        return []
    ids = [r["id"] for r in changed]
    with atomic(project.db):
        before = store.snapshot(project, ids)
        marks = ",".join("?" * len(ids))
        project.db.execute(f"UPDATE project_assets SET locked = ?, updated_at = ? WHERE id IN ({marks})",
                           [int(locked), now(), *ids])
        project.record_event("lock" if locked else "unlock", {
            "summary": {"assets": [r["name"] for r in changed]}, "before": before, "touched": ids})
    return [r["name"] for r in changed]


def lock_all(project: Project, *, generated_only: bool = False, strict: bool = False) -> dict[str, Any]:
    """The gatekeeper. Returns {locked: [...], stage: status, blockers, warnings}.

    Without `generated_only`: if anything blocks, changes nothing and raises BlockedError with
    the blockers attached; otherwise locks every asset and stage 5 in one transaction.
    With `generated_only`: locks every asset that has an image; the stage is left as it is.
    """
    if generated_only:
        project.require_draft("lock assets")
        targets = [r for r in store.rows(project)
                   if r["image_key_url"] and (project.root / r["image_key_url"]).is_file()
                   and not r["locked"]]
        names = set_locked(project, [str(r["id"]) for r in targets], True) if targets else []
        return {"locked": names, "stage": project.stage()["status"], "blockers": [], "warnings": []}
    if project.stage()["status"] == "locked":
        return {"locked": [], "stage": "locked", "blockers": [], "warnings": [], "already": True}
    block, warn = blockers(project, strict=strict)
    if block:
        err = GateBlocked(block, warn)
        raise err
    all_rows = store.rows(project)
    ids = [r["id"] for r in all_rows]
    with atomic(project.db):
        before = store.snapshot(project, ids)
        stage_before = project.stage()
        marks = ",".join("?" * len(ids))
        project.db.execute(f"UPDATE project_assets SET locked = 1, updated_at = ? WHERE id IN ({marks})",
                           [now(), *ids])
        project.db.execute("UPDATE stage_state SET status = 'locked' WHERE branch_id = ?",
                           [project.branch_id])
        project.record_event("lock-all", {
            "summary": {"assets": len(ids)}, "before": before, "touched": ids,
            "stage_before": stage_before})
    return {"locked": [r["name"] for r in all_rows if not r["locked"]], "stage": "locked",
            "blockers": [], "warnings": warn}


class GateBlocked(BlockedError):
    def __init__(self, blockers: list[dict], warnings: list[dict]):
        n = len(blockers)
        first = blockers[0]
        what = (f"{first['asset']}: needs {first['missing']}" if first["asset"]
                else f"needs {first['missing']}")
        more = f" (and {n - 1} more)" if n > 1 else ""
        super().__init__(f"stage 5 cannot be locked: {what}{more}; see the table above or "
                         "stage5 status --json")
        self.blockers = blockers
        self.warnings = warnings
