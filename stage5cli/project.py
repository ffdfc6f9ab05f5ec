"""A project folder: stage5.db + images/. Branches, the style lock, the stage-5 state machine."""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils

    from .styles import StyleCapsule

from . import migrations
from .db import atomic, connect, dumps, loads, now
from .errors import BlockedError, NotFoundError, Stage5Error, UsageError

DB_NAME = "stage5.db"
IMAGES = "images"
TRASH = ".trash"

NO_STYLE = "no visual style is locked: run stage5 style list, then stage5 style lock ID"


def resolve_dir(option: str | Path | None) -> Path:
    """--project/-p, else $STAGE5_PROJECT, else the current folder."""
    value = option or os.environ.get("STAGE5_PROJECT") or "."
    return Path(value).expanduser()


@dataclass
class Project:
    root: Path
    db: sqlite_utils.Database

    # ---- places ------------------------------------------------------------------------------
    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES

    @property
    def trash_dir(self) -> Path:
        return self.root / IMAGES / TRASH

    @property
    def uid(self) -> str:
        return self.db.execute("SELECT project_uid FROM project WHERE id = 1").fetchone()[0]

    # ---- branches ----------------------------------------------------------------------------
    @property
    def branch_id(self) -> int:
        return self.db.execute("SELECT active_branch_id FROM project WHERE id = 1").fetchone()[0]

    def branch(self) -> dict[str, Any]:
        return next(self.db.query("SELECT * FROM branches WHERE id = ?", [self.branch_id]))

    def stage(self, branch_id: int | None = None) -> dict[str, Any]:
        bid = branch_id or self.branch_id
        return next(self.db.query("SELECT * FROM stage_state WHERE branch_id = ?", [bid]))

    # ---- the style lock ----------------------------------------------------------------------
    def locked_style(self, branch_id: int | None = None) -> tuple[dict, StyleCapsule] | None:
        row = self.locked_style_row(branch_id)
        if row is None:
            return None
        from .styles import StyleCapsule

        # The snapshot rules: the body stored at lock time, never the YAML file as it is now.
        return row, StyleCapsule.model_validate(loads(row["body"]))

    def locked_style_row(self, branch_id: int | None = None) -> dict[str, Any] | None:
        """The locked style's style_capsules row (id, style_id, name, sha256, body), without
        validating its body into a StyleCapsule (pydantic): for the commands that only read."""
        sid = self.stage(branch_id)["locked_visual_style_capsule_id"]
        if sid is None:
            return None
        return next(self.db.query("SELECT * FROM style_capsules WHERE id = ?", [sid]))

    def require_style(self) -> tuple[dict, StyleCapsule]:
        found = self.locked_style()
        if found is None:
            raise BlockedError(NO_STYLE)
        return found

    def require_draft(self, action: str = "change anything") -> None:
        if self.stage()["status"] == "locked":
            raise BlockedError(
                f"stage 5 is locked on branch {self.branch()['name']!r}: to {action}, "
                "run stage5 branch create NAME"
            )

    # ---- history -----------------------------------------------------------------------------
    def record_event(self, command: str, payload: dict[str, Any]) -> int:
        """Call inside the transaction that makes the change."""
        return self.db["events"].insert(
            {"at": now(), "branch_id": self.branch_id, "command": command,
             "payload": dumps(payload), "undone": 0}
        ).last_pk


# ---- opening and creating ------------------------------------------------------------------


def script_relpath(project: Project, script: Path) -> str:
    """How `extract` records its script: relative to the project folder (POSIX separators),
    so the record is the same from any working folder and travels with the project; absolute
    where no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(Path(script).resolve(), project.root.resolve())).as_posix()
    except ValueError:
        return str(Path(script).resolve())


def script_file(project: Project, stored: str | None) -> Path | None:
    """The file a recorded script path names (None: no script extracted). Paths are relative
    to the project folder (script_relpath); a record written before stage5 did so is relative
    to wherever extract ran, so when only that reading names a file, it is the one."""
    if not stored:
        return None
    raw = Path(stored)
    if raw.is_absolute():
        return raw
    mine = project.root / raw
    return raw.absolute() if not mine.is_file() and raw.is_file() else mine


def _open_db(path: Path) -> sqlite_utils.Database:
    migrations.preflight(path, known=migrations.known_versions(), label="project")
    db = connect(path)
    try:
        migrations.migrate(db)
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise UsageError(f"{path} is corrupted (run stage5 doctor)")
    except sqlite3.DatabaseError as e:
        db.conn.close()
        raise UsageError(f"{path} is corrupted or not a stage5 database ({e})") from None
    except Stage5Error:
        db.conn.close()
        raise
    return db


def open_project(option: str | Path | None = None) -> Project:
    root = resolve_dir(option)
    path = root / DB_NAME
    if not path.is_file():
        raise UsageError(f"not a stage5 project: run stage5 init {root}")
    project = Project(root=root, db=_open_db(path))
    if project.db.execute("SELECT count(*) FROM project").fetchone()[0] != 1:
        raise UsageError(f"{path} has no project row (run stage5 doctor)")
    return project


def init_project(directory: str | Path | None) -> tuple[Project, bool]:
    """Create DIR/stage5.db and DIR/images/ (idempotent). Returns (project, created)."""
    root = resolve_dir(directory)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file, not a folder")
    path = root / DB_NAME
    if path.exists():
        return open_project(root), False
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / IMAGES).mkdir(exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {root}: {e.strerror}") from None
    if not os.access(root, os.W_OK):
        raise UsageError(f"cannot write to {root}: permission denied")
    tmp = root / f".{DB_NAME}.init-{os.getpid()}"
    try:
        db = connect(tmp, create=True)
        migrations.migrate(db)
        with atomic(db):
            at = now()
            bid = db["branches"].insert({"name": "main", "parent_id": None, "created_at": at}).last_pk
            db["stage_state"].insert({"branch_id": bid, "stage": 5, "status": "draft", "content": "{}"})
            db["project"].insert(
                {"id": 1, "project_uid": uuid.uuid4().hex, "active_branch_id": bid, "created_at": at}
            )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.execute("PRAGMA journal_mode = DELETE")
        db.conn.close()
        os.replace(tmp, path)  # a half-made project never appears under the real name
    except OSError as e:
        for leftover in root.glob(f".{DB_NAME}.init-*"):
            leftover.unlink(missing_ok=True)
        raise UsageError(f"cannot create {path}: {e.strerror}") from None
    return open_project(root), True


# ---- styles in a project -----------------------------------------------------------------


def imported_styles(project: Project | None) -> dict[str, StyleCapsule]:
    if project is None:
        return {}
    from .styles import StyleCapsule

    return {
        r["style_id"]: StyleCapsule.model_validate(loads(r["body"]))
        for r in project.db.query("SELECT * FROM imported_styles ORDER BY style_id")
    }


def available_styles(project: Project | None) -> dict[str, tuple[StyleCapsule, str]]:
    """id -> (capsule, origin) where origin is 'built-in' or 'imported'."""
    from .styles import builtin_styles

    found = {k: (v, "built-in") for k, v in builtin_styles().items()}
    found.update({k: (v, "imported") for k, v in imported_styles(project).items()})
    return found


def find_style(project: Project | None, style_id: str) -> StyleCapsule:
    styles = available_styles(project)
    if style_id in styles:
        return styles[style_id][0]
    from .styles import suggest

    raise NotFoundError(f"unknown style {style_id!r}{suggest(style_id, list(styles))}")


def import_style(project: Project, path: Path) -> StyleCapsule:
    from .styles import builtin_styles, load_yaml_file

    project.require_draft("import a style")
    capsule = load_yaml_file(path)
    from .images.budget import clip_budget
    from .prompting import check_fits

    # the strictest common window (CLIP, 77 tokens): a style that cannot fit it is refused
    check_fits(capsule, clip_budget("a CLIP text encoder (SD 1.x/2.x, SDXL)"), label=str(path))
    if capsule.id in builtin_styles():
        raise UsageError(f"{path}: id: {capsule.id!r} is a built-in style; choose another id")
    with atomic(project.db):
        project.db["imported_styles"].upsert(
            {"style_id": capsule.id, "body": dumps(capsule.model_dump(mode="json")),
             "source": str(path), "imported_at": now()},
            pk="style_id",
        )
        project.record_event("style import", {"style_id": capsule.id, "source": str(path)})
    return capsule


def _snapshot_style(project: Project, capsule: StyleCapsule, source: str) -> int:
    body = capsule.model_dump(mode="json")
    sha = capsule.sha256()
    row = project.db.execute(
        "SELECT id FROM style_capsules WHERE style_id = ? AND sha256 = ?", [capsule.id, sha]
    ).fetchone()
    if row:
        return row[0]
    return project.db["style_capsules"].insert(
        {"style_id": capsule.id, "name": capsule.name, "sha256": sha, "body": dumps(body),
         "source": source, "created_at": now()}
    ).last_pk


def lock_style(project: Project, style_id: str) -> tuple[dict, bool]:
    """Lock `style_id` on the active branch. Returns (style row, changed)."""
    current = project.locked_style()
    if current is not None:
        row, _ = current
        if row["style_id"] == style_id:
            return row, False
        raise BlockedError(
            f"branch {project.branch()['name']!r} is locked to style {row['style_id']!r}; "
            f"to use {style_id!r} run stage5 branch create NAME --style {style_id}"
        )
    project.require_draft("lock a style")
    capsule = find_style(project, style_id)
    origin = available_styles(project)[style_id][1]
    with atomic(project.db):
        sid = _snapshot_style(project, capsule, origin)
        before = project.stage()
        project.db.execute(
            "UPDATE stage_state SET locked_visual_style_capsule_id = ?, style_locked_at = ? "
            "WHERE branch_id = ?",
            [sid, now(), project.branch_id],
        )
        project.record_event("style lock", {"style_id": style_id, "stage_before": before})
    return next(project.db.query("SELECT * FROM style_capsules WHERE id = ?", [sid])), True


# ---- branches ------------------------------------------------------------------------------


def list_branches(project: Project) -> list[dict[str, Any]]:
    rows = []
    active = project.branch_id
    for b in project.db.query("SELECT * FROM branches ORDER BY id"):
        st = project.stage(b["id"])
        style = project.locked_style(b["id"])
        count = project.db.execute(
            "SELECT count(*) FROM project_assets WHERE branch_id = ?", [b["id"]]
        ).fetchone()[0]
        parent = None
        if b["parent_id"]:
            parent = project.db.execute(
                "SELECT name FROM branches WHERE id = ?", [b["parent_id"]]
            ).fetchone()[0]
        rows.append({
            "name": b["name"], "active": b["id"] == active, "parent": parent,
            "style_id": style[0]["style_id"] if style else None,
            "status": st["status"], "assets": count, "created_at": b["created_at"],
        })
    return rows


def _branch_by_name(project: Project, name: str) -> dict[str, Any]:
    rows = list(project.db.query("SELECT * FROM branches WHERE name = ?", [name]))
    if not rows:
        names = [r["name"] for r in project.db.query("SELECT name FROM branches")]
        from .styles import suggest

        raise NotFoundError(f"no branch named {name!r}{suggest(name, names)}")
    return rows[0]


def create_branch(project: Project, name: str, style_id: str | None, switch: bool = True,
                  keep_style: bool = True) -> dict:
    """A new branch with a copy of the active branch's assets (unlocked). Its style: `style_id`
    locked afresh; else (keep_style) the active branch's locked style; else none."""
    name = name.strip()
    if not name or len(name) > 64 or any(c in name for c in "\n\r\t/"):
        raise UsageError("a branch name must be 1-64 characters without '/', tabs or newlines")
    if project.db.execute("SELECT 1 FROM branches WHERE name = ?", [name]).fetchone():
        raise UsageError(f"branch {name!r} already exists")
    capsule = find_style(project, style_id) if style_id else None
    origin = available_styles(project)[style_id][1] if style_id else ""
    parent = project.branch_id
    with atomic(project.db):
        bid = project.db["branches"].insert(
            {"name": name, "parent_id": parent, "created_at": now()}
        ).last_pk
        src = project.stage(parent)
        if capsule:
            sid = _snapshot_style(project, capsule, origin)
        else:  # the same locked snapshot as the parent (or none)
            sid = src["locked_visual_style_capsule_id"] if keep_style else None
        project.db["stage_state"].insert({
            "branch_id": bid, "stage": 5, "status": "draft",
            "locked_visual_style_capsule_id": sid, "style_locked_at": now() if sid else None,
            "script_path": src["script_path"], "script_sha256": src["script_sha256"],
            "content": src["content"],
        })
        copy_assets(project, parent, bid)
        if switch:
            project.db.execute("UPDATE project SET active_branch_id = ?", [bid])
        project.record_event("branch create", {"name": name, "from": parent, "style_id": style_id,
                                               "kept_style": bool(sid and not capsule)})
    return next(project.db.query("SELECT * FROM branches WHERE id = ?", [bid]))


def copy_assets(project: Project, src_branch: int, dst_branch: int) -> int:
    """Copy every asset (unlocked) with its mentions from one branch to another, and the
    branch's curation records (what the user removed and merged, m003), so re-extracting on
    the new branch honours them too; a merge record points at the target's copy. Inside the
    caller's transaction."""
    db = project.db
    n = 0
    at = now()
    new_ids: dict[int, int] = {}
    for a in list(db.query("SELECT * FROM project_assets WHERE branch_id = ?", [src_branch])):
        old = a.pop("id")
        a.update(branch_id=dst_branch, locked=0, created_at=at, updated_at=at)
        new = db["project_assets"].insert(a).last_pk
        db.execute(
            "INSERT INTO asset_mentions (asset_id, scene_number, text, context) "
            "SELECT ?, scene_number, text, context FROM asset_mentions WHERE asset_id = ?",
            [new, old],
        )
        new_ids[old] = new
        n += 1
    for c in list(db.query("SELECT * FROM curation_records WHERE branch_id = ? ORDER BY id",
                           [src_branch])):
        c.pop("id")
        target = c["target_id"]
        c.update(branch_id=dst_branch, target_id=None if target is None else new_ids.get(target))
        db["curation_records"].insert(c)
    return n


def switch_branch(project: Project, name: str) -> dict:
    b = _branch_by_name(project, name)
    with atomic(project.db):
        project.db.execute("UPDATE project SET active_branch_id = ?", [b["id"]])
    return b
