"""Locking assets and the stage-5 gatekeeper (lock-all)."""

from __future__ import annotations

from typing import Any

from . import store
from .db import atomic, now
from .errors import BlockedError, UsageError
from .project import Project


def set_locked(project: Project, refs: list[str], locked: bool) -> list[str]:
    """Lock or unlock the named assets in one transaction; returns the names changed."""
    with atomic(project.db):  # what is locked now is read inside the transaction that locks
        if not locked and project.stage()["status"] == "locked":
            raise BlockedError(
                f"stage 5 is locked on branch {project.branch()['name']!r}: assets cannot be "
                "unlocked; run stage5 branch create NAME to change anything")
        if locked:
            project.require_draft("lock assets")
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
        before = store.snapshot(project, ids)
        marks = ",".join("?" * len(ids))
        project.db.execute(f"UPDATE project_assets SET locked = ?, updated_at = ? WHERE id IN ({marks})",
                           [int(locked), now(), *ids])
        project.record_event("lock" if locked else "unlock", {
            "summary": {"assets": [r["name"] for r in changed]}, "before": before, "touched": ids})
    return [r["name"] for r in changed]


def lock_all(project: Project, *, generated_only: bool = False, strict: bool = False,
             allow_placeholder: bool = False, accept_conflicts: bool = False) -> dict[str, Any]:
    """The gatekeeper. Returns {locked: [...], stage: status, blockers, warnings}.

    Ready means readiness.assess says nothing blocks: every asset has a current image key in
    the locked style from a real backend (placeholders count only with `allow_placeholder`).
    Unresolved conflicts block with `strict`; otherwise they must be accepted explicitly
    (`accept_conflicts`, the CLI's --yes or its question), else UnconfirmedConflicts (exit 2)
    and nothing changes. The assessment is made inside the transaction that locks.

    With `generated_only`: locks every unlocked asset whose image key is current (placeholders
    only with `allow_placeholder`); the stage is left as it is.
    """
    from .readiness import assess

    if generated_only:
        with atomic(project.db):  # the targets are chosen inside the transaction that locks
            project.require_draft("lock assets")
            r = assess(project, allow_placeholder=allow_placeholder)
            ok = {"ok", "placeholder"} if allow_placeholder else {"ok"}
            targets = [a for a in r.assets if a.image_state in ok and not a.locked]
            skipped = [a.name for a in r.assets if a.image_state == "placeholder"
                       and not a.locked and not allow_placeholder]
            names = set_locked(project, [str(a.id) for a in targets], True) if targets else []
        warnings = ([{"cause": "placeholder", "message": f"{len(skipped)} placeholder image "
                      "key(s) not locked", "fix": "pass --allow-placeholder",
                      "assets": skipped, "count": len(skipped)}] if skipped else [])
        return {"locked": names, "stage": project.stage()["status"], "blockers": [],
                "warnings": warnings}
    with atomic(project.db):  # every read that decides the lock happens inside it
        if project.stage()["status"] == "locked":
            return {"locked": [], "stage": "locked", "blockers": [], "warnings": [],
                    "already": True}
        r = assess(project, strict=strict, allow_placeholder=allow_placeholder)
        warn = [g.model_dump() for g in r.warnings]
        if r.blockers:
            raise GateBlocked([g.model_dump() for g in r.blockers], warn, r.summary())
        conflicts = [g for g in r.warnings if g.cause == "conflicts"]
        if conflicts and not accept_conflicts:
            raise UnconfirmedConflicts(conflicts[0])
        all_rows = store.rows(project)
        ids = [row["id"] for row in all_rows]
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
    return {"locked": [row["name"] for row in all_rows if not row["locked"]], "stage": "locked",
            "blockers": [], "warnings": warn}


class GateBlocked(BlockedError):
    """Exit 3 with one line: the first cause and its fix (the groups are attached)."""

    def __init__(self, blockers: list[dict], warnings: list[dict], summary: str | None = None):
        if summary is None:
            first = blockers[0]
            summary = f"{first['message']}: {first['fix']}"
        super().__init__(f"stage 5 cannot be locked: {summary}")
        self.blockers = blockers
        self.warnings = warnings


class UnconfirmedConflicts(UsageError):
    """Unresolved conflicts, and nobody said to lock anyway (exit 2)."""

    def __init__(self, group: Any):
        names = ", ".join(group.assets[:5]) + ("…" if len(group.assets) > 5 else "")
        super().__init__(f"{group.message} ({names}): resolve first ({group.fix}), pass --yes "
                         "to lock anyway, or --strict to refuse")
        self.group = group
