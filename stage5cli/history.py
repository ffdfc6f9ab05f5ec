"""History and undo: the `events` table, and reverting the last change of the active branch.

Changes write their event with record() (or Project.record_event). An event can be undone
when its payload holds the state before the change:
  before + touched   the rows of those assets (store.snapshot) -> store.restore()
  stage_before       the stage_state row of the branch
  trashed            [{"from", "to"}] image files moved to the trash -> moved back
  after              (optional) the rows right after the change; when present, undo first
                     checks that nothing changed them since (so it never clobbers later work)
Image files that only the undone change referenced (e.g. the output of `generate`) are moved
to the trash. Undo runs in one transaction and marks the event `undone`; repeated undo walks
back. Events without a before-state (style lock, branch create, promote, ...) explain why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import store
from .db import atomic, loads
from .errors import BlockedError, UsageError
from .project import Project
from .trash import (
    image_files,
    move_files,
    project_file,
    still_referenced,
    trash_name,
    undo_moves,
)

LOCK_COMMANDS = ("lock", "unlock", "lock-all")
# Never undone, whatever their payload holds (the style lock is the project's contract).
PERMANENT = ("style lock", "style import", "branch create", "promote")

WHY: dict[str, str] = {
    "style lock": "a locked style is permanent on its branch; to use another style run "
                  "stage5 branch create NAME --style ID",
    "style import": "an imported style stays available (it changes nothing until it is locked); "
                    "import a corrected file over it with stage5 style import FILE",
    "branch create": "a branch is never undone; go back with stage5 branch switch {parent}",
    "promote": "promote copied the asset into the global library, which undo does not edit; "
               "the project itself did not change",
    "library use": "library use recorded no before-state, so it cannot be undone; remove the "
                   "asset with stage5 remove NAME",
}


class EventView(BaseModel):
    """One row of `history --json`."""

    id: int
    at: str
    branch: str | None
    command: str
    summary: str
    undone: bool
    undoable: bool
    why_not: str | None
    payload: dict[str, Any] | None = None
    # for `undo`: the newer permanent events (promote, style lock, branch create) it stepped over
    stepped_over: list[str] = []


def record(project: Project, command: str, summary: str, before: dict, touched: list[int],
           **extra: Any) -> int:
    """Write the event of a change (call inside its transaction, after the change): the
    before-state, the touched asset ids and their rows after, which undo checks and restores."""
    after = store.snapshot(project, touched)
    return project.record_event(command, {
        "summary": summary, "before": before, "touched": touched, "after": after, **extra})


def _summary(command: str, payload: dict[str, Any]) -> str:
    s = payload.get("summary")
    if isinstance(s, dict):
        return ", ".join(f"{k} {v}" for k, v in s.items() if v not in (0, None, "", [])) or command
    if s:
        return str(s)
    keys = [f"{k} {payload[k]}" for k in ("style_id", "name", "asset", "source")
            if isinstance(payload.get(k), str | int)]
    return ", ".join(keys) or command


def why_not(project: Project, event: dict[str, Any], payload: dict[str, Any] | None = None
            ) -> str | None:
    """Why this event cannot be undone by its kind (None when it can)."""
    payload = payload if payload is not None else loads(event["payload"], {})
    command = event["command"]
    if payload.get("undoable") is False:
        return payload.get("why") or f"{command} cannot be undone"
    if command not in PERMANENT and (("before" in payload and "touched" in payload)
                                     or "stage_before" in payload):
        return None
    if command in WHY:
        parent = "PARENT"
        if command == "branch create" and payload.get("from"):
            row = project.db.execute("SELECT name FROM branches WHERE id = ?",
                                     [payload["from"]]).fetchone()
            parent = row[0] if row else parent
        return WHY[command].format(parent=parent)
    return f"{command} recorded no before-state, so it cannot be undone"


def list_events(project: Project, *, limit: int | None = 20, payload: bool = False,
                all_branches: bool = False) -> list[EventView]:
    """Newest first; the active branch's events unless all_branches."""
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    names = dict(project.db.execute("SELECT id, name FROM branches").fetchall())
    sql = "SELECT * FROM events"
    args: list[Any] = []
    if not all_branches:
        sql += " WHERE branch_id = ?"
        args.append(project.branch_id)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    out = []
    for e in project.db.query(sql, args):
        p = loads(e["payload"], {}) or {}
        why = why_not(project, e, p)
        out.append(EventView(
            id=e["id"], at=e["at"], branch=names.get(e["branch_id"]), command=e["command"],
            summary=_summary(e["command"], p), undone=bool(e["undone"]),
            undoable=why is None and not e["undone"], why_not=why,
            payload=p if payload else None))
    return out


def last_event(project: Project) -> dict[str, Any] | None:
    """The newest event of the active branch that is not undone yet."""
    return next(project.db.query(
        "SELECT * FROM events WHERE branch_id = ? AND undone = 0 ORDER BY id DESC LIMIT 1",
        [project.branch_id]), None)


def _undo_target(project: Project) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The event `undo` reverts: the newest not-undone event of the active branch that is not
    permanent by its kind (PERMANENT: they change nothing undo could restore, so they must not
    wall off the history below them), and the permanent ones stepped over, newest first.
    With only permanent events left: the newest of them (its error says why)."""
    skipped: list[dict[str, Any]] = []
    for e in project.db.query(
            "SELECT * FROM events WHERE branch_id = ? AND undone = 0 ORDER BY id DESC",
            [project.branch_id]):
        if e["command"] in PERMANENT:
            skipped.append(e)
            continue
        return e, skipped
    return (skipped[0], []) if skipped else (None, [])


def _stepped(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['command']} (event {e['id']})" for e in events]


def peek(project: Project) -> EventView:
    """What `undo` would revert (UsageError when there is nothing)."""
    e, skipped = _undo_target(project)
    if e is None:
        raise UsageError(f"nothing to undo on branch {project.branch()['name']!r}")
    p = loads(e["payload"], {}) or {}
    why = why_not(project, e, p)
    return EventView(id=e["id"], at=e["at"], branch=project.branch()["name"], command=e["command"],
                     summary=_summary(e["command"], p), undone=False, undoable=why is None,
                     why_not=why, stepped_over=_stepped(skipped))


def _by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: r["id"])


def _changed_since(project: Project, payload: dict[str, Any]) -> str | None:
    """The name of an asset whose rows differ from the event's after-state, if any."""
    after = payload.get("after")
    if after is None:
        return None
    now_ = store.snapshot(project, payload["touched"])
    for key in ("assets", "mentions", "jobs"):
        if _by_id(now_[key]) != _by_id(after.get(key, [])):
            ids = {r["id"] if key == "assets" else r["asset_id"]
                   for r in [*now_[key], *after.get(key, [])]}
            ids &= set(payload["touched"])
            names = [r["name"] for r in [*now_["assets"], *after.get("assets", []),
                                         *payload["before"].get("assets", [])]
                     if r["id"] in ids]
            return names[0] if names else f"id {sorted(ids)[0] if ids else '?'}"
    return None


def _generating(project: Project, ids: list[int]) -> int | None:
    """The pid of another live process with image jobs for these assets still pending or
    running (read inside undo's transaction), or None."""
    from .jobs import owner_alive

    if not ids:
        return None
    marks = ",".join("?" * len(ids))
    for (pid,) in project.db.execute(
            f"SELECT DISTINCT pid FROM image_generation_jobs WHERE status IN ('pending', "
            f"'running') AND asset_id IN ({marks})", ids).fetchall():
        if owner_alive(pid):
            return pid
    return None


def _check(project: Project, event: dict[str, Any], payload: dict[str, Any]) -> None:
    command = event["command"]
    why = why_not(project, event, payload)
    if why:
        raise BlockedError(f"cannot undo {command} (event {event['id']}): {why}")
    stage = project.stage()
    stage_before = payload.get("stage_before")
    if stage["status"] == "locked" and not (stage_before and stage_before.get("status") == "draft"):
        project.require_draft("undo a change")
    if "before" not in payload:
        return
    touched = list(payload.get("touched", []))
    busy = _generating(project, touched)
    if busy:
        raise BlockedError(f"cannot undo {command} (event {event['id']}): a generate is still "
                           f"running (pid {busy}); wait for it to finish, or stop it, then undo")
    ids = sorted(set(touched) | {a["id"] for a in payload["before"].get("assets", [])})
    for r in store.by_ids(project, ids):
        if r["branch_id"] != event["branch_id"]:
            raise BlockedError(f"cannot undo {command}: asset id {r['id']} now belongs to "
                               "another branch")
        if r["locked"] and command not in LOCK_COMMANDS:
            raise BlockedError(f"asset {r['name']!r} is locked: run stage5 unlock "
                               f"{r['name']!r} to undo {command}")
    changed = _changed_since(project, payload)
    if changed:
        raise BlockedError(f"cannot undo {command}: asset {changed!r} was changed after it "
                           "(outside stage5's history); change it back by hand")
    for t in payload.get("trashed", []):
        src, dst = project.root / t["from"], project.root / t["to"]
        if not dst.is_file():
            raise BlockedError(f"cannot undo {command}: the trashed file {t['to']} is gone")
        if src.exists():
            raise BlockedError(f"cannot undo {command}: {t['from']} exists again; move it "
                               "away first")


def _created_files(project: Project, payload: dict[str, Any]) -> list[Path]:
    """Image files referenced now by the touched assets but not in the before-state."""
    before = payload["before"]
    old = {str(p.resolve()) for ref in
           [*(a.get("image_key_url") for a in before.get("assets", [])),
            *(j.get("image_path") for j in before.get("jobs", []))]
           if (p := project_file(project, ref)) is not None}
    return [f for f in image_files(project, list(payload.get("touched", [])))
            if str(f.resolve()) not in old]


def undo(project: Project) -> tuple[EventView, list[str]]:
    """Revert the newest not-undone event of the active branch exactly, in one transaction.

    Returns (the event undone, notes such as files moved back or to the trash).
    """
    moves: list[tuple[Path, Path]] = []
    notes: list[str] = []
    try:
        with atomic(project.db):
            event, _ = _undo_target(project)
            if event is None:
                raise UsageError(f"nothing to undo on branch {project.branch()['name']!r}")
            payload = loads(event["payload"], {}) or {}
            _check(project, event, payload)
            view = peek(project)
            if "before" in payload:
                created = _created_files(project, payload)
                store.restore(project, payload["before"], list(payload.get("touched", [])))
                for f in created:
                    if not still_referenced(project, f):
                        moves.append((f, trash_name(project, f)))
                        notes.append(f"moved {f.relative_to(project.root).as_posix()} "
                                     "to the trash")
            if "curation_before" in payload:  # remove and merge record what re-extraction honours
                store.restore_curation(project, payload["curation_before"])
            stage_before = payload.get("stage_before")
            if stage_before:
                cols = {k: v for k, v in stage_before.items() if k != "branch_id"}
                sets = ", ".join(f"{k} = ?" for k in cols)
                project.db.execute(f"UPDATE stage_state SET {sets} WHERE branch_id = ?",
                                   [*cols.values(), stage_before["branch_id"]])
            for t in payload.get("trashed", []):
                moves.append((project.root / t["to"], project.root / t["from"]))
                notes.append(f"restored {t['from']}")
            project.db.execute("UPDATE events SET undone = 1 WHERE id = ?", [event["id"]])
            move_files(moves)
    except BaseException:
        if moves and all(d.exists() for _, d in moves):
            undo_moves(moves)
        raise
    view.undone = True
    view.undoable = False
    return view, notes
