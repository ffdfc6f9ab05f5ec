"""The global asset library: `library.db` + `images/` under $STAGE5_HOME, shared by projects.

It has its own append-only migrations (recorded in a `_stage5_migrations` table inside
library.db, like a project's); a library written by a newer stage5 is refused untouched.
Images are stored content-addressed (`images/<sha256>.png`), copied through a temp file and
a rename, so a half-copied image never appears under its real name.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    import sqlite_utils

from . import files, migrations, store
from .db import atomic, connect, dumps, loads, now
from .errors import BlockedError, NotFoundError, Stage5Error, UsageError
from .models import ASSET_TYPES
from .project import Project

DB_NAME = "library.db"
IMAGES = "images"
TABLE = migrations.TABLE  # the same table name as a project's, inside library.db
LIBRARY = migrations.MigrationSet("library")


@LIBRARY.migration
def lib001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        f"""
        CREATE TABLE global_assets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            asset_type TEXT NOT NULL CHECK (asset_type IN {tuple(ASSET_TYPES)!r}),
            description TEXT NOT NULL DEFAULT '',
            image_prompt TEXT,
            image_key_url TEXT NOT NULL,
            image_sha256 TEXT NOT NULL,
            visual_style_capsule_id TEXT,
            style_sha256 TEXT,
            style_name TEXT,
            voice_profile_id TEXT,
            promoted_from_project_id TEXT,
            promoted_from_asset_id INTEGER,
            aliases TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE UNIQUE INDEX idx_global_name_type "
               "ON global_assets (name COLLATE NOCASE, asset_type)")


@LIBRARY.migration
def lib002_project_name(db: sqlite_utils.Database) -> None:
    """The promoting project's folder name, shown by `library list` (rows promoted before this
    keep showing the project's uid)."""
    db.execute("ALTER TABLE global_assets ADD COLUMN promoted_from_project_name TEXT")


def known_versions() -> list[str]:
    return LIBRARY.names()


class LibraryAsset(BaseModel):
    """One library asset as `library list --json` and `library show --json` print it."""

    id: int
    name: str
    type: str
    aliases: list[str]
    description: str
    image_prompt: str | None
    image_key_url: str
    image_path: str
    image_sha256: str
    style_id: str | None
    style_name: str | None
    style_sha256: str | None
    voice_profile_id: str | None
    promoted_from_project_id: str | None
    promoted_from_project_name: str | None = None  # the project's folder name (since lib002)
    promoted_from_asset_id: int | None
    created_at: str
    updated_at: str


@dataclass
class Library:
    root: Path
    db: sqlite_utils.Database

    @property
    def path(self) -> Path:
        return self.root / DB_NAME

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES


# ---- where it lives and opening it -----------------------------------------------------------


def home() -> Path:
    """$STAGE5_HOME, else the platform's user-data folder for stage5."""
    env = os.environ.get("STAGE5_HOME")
    if env:
        return Path(env).expanduser()
    import typer

    return Path(typer.get_app_dir("stage5"))


def _unusable(root: Path, reason: str) -> UsageError:
    return UsageError(f"the library folder {root} is not usable ({reason}); "
                      "set $STAGE5_HOME to a writable folder")


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the library migrations not yet recorded; return the names applied."""
    return LIBRARY.migrate(db)


def open_library(*, create: bool = False, root: Path | None = None) -> Library | None:
    """The library, migrated. Without `create`, a library that does not exist yet is None."""
    root = root or home()
    path = root / DB_NAME
    if root.exists() and not root.is_dir():
        raise _unusable(root, "it is a file, not a folder")
    if not path.exists():
        if not create:
            return None
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / IMAGES).mkdir(exist_ok=True)
        except OSError as e:
            raise _unusable(root, e.strerror or str(e)) from None
        if not os.access(root, os.W_OK):
            raise _unusable(root, "permission denied")
    elif not path.is_file():
        raise _unusable(root, f"{path} is not a file")
    else:
        LIBRARY.preflight(path, allow_empty=True)
    try:
        db = connect(path, create=True)
        migrate(db)
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{path} is corrupted or not a stage5 library ({e})") from None
    if create:
        try:
            (root / IMAGES).mkdir(exist_ok=True)
        except OSError as e:
            raise _unusable(root, e.strerror or str(e)) from None
    return Library(root=root, db=db)


# ---- reading -------------------------------------------------------------------------------


def _to_model(lib_root: Path, row: dict[str, Any]) -> LibraryAsset:
    return LibraryAsset(
        id=row["id"], name=row["name"], type=row["asset_type"],
        aliases=loads(row["aliases"], []), description=row["description"] or "",
        image_prompt=row["image_prompt"], image_key_url=row["image_key_url"],
        image_path=str((lib_root / row["image_key_url"]).resolve()),
        image_sha256=row["image_sha256"], style_id=row["visual_style_capsule_id"],
        style_name=row["style_name"], style_sha256=row["style_sha256"],
        voice_profile_id=row["voice_profile_id"],
        promoted_from_project_id=row["promoted_from_project_id"],
        promoted_from_project_name=row.get("promoted_from_project_name"),
        promoted_from_asset_id=row["promoted_from_asset_id"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _check_type(asset_type: str | None) -> str | None:
    return None if asset_type is None else store.check_type(asset_type)


def list_assets(asset_type: str | None = None) -> list[LibraryAsset]:
    """Every library asset (of one type), by type then name; [] when there is no library yet."""
    asset_type = _check_type(asset_type)
    lib = open_library()
    if lib is None:
        return []
    sql = "SELECT * FROM global_assets"
    args: list[Any] = []
    if asset_type:
        sql += " WHERE asset_type = ?"
        args.append(asset_type)
    order = "CASE asset_type WHEN 'character' THEN 0 WHEN 'location' THEN 1 ELSE 2 END"
    return [_to_model(lib.root, r)
            for r in lib.db.query(f"{sql} ORDER BY {order}, lower(name)", args)]


def _find(lib: Library | None, ref: str, asset_type: str | None) -> dict[str, Any]:
    """A library row by id, name (case-insensitive) or alias; exit 2 with suggestions."""
    from .styles import suggest

    ref = ref.strip()
    if not ref:
        raise UsageError("a library asset name cannot be empty")
    asset_type = _check_type(asset_type)
    rows = [] if lib is None else list(lib.db.query("SELECT * FROM global_assets ORDER BY id"))
    if asset_type:
        rows = [r for r in rows if r["asset_type"] == asset_type]
    if ref.isdigit():
        hit = [r for r in rows if r["id"] == int(ref)]
        if hit:
            return hit[0]
    low = ref.lower()
    for found in ([r for r in rows if r["name"].lower() == low],
                  [r for r in rows if low in (a.lower() for a in loads(r["aliases"], []))]):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = ", ".join(f"{r['name']} (id {r['id']}, {r['asset_type']})" for r in found[:8])
            raise UsageError(f"{ref!r} is ambiguous in the library: {listed}; "
                             "use the id or --type")
    names = [r["name"] for r in rows]
    hint = suggest(ref, names) if names else "; the library is empty (add assets with stage5 promote)"
    kind = f" {asset_type}" if asset_type else ""
    raise NotFoundError(f"no{kind} library asset named {ref!r}{hint}")


def show(name: str, asset_type: str | None = None) -> LibraryAsset:
    lib = open_library()
    row = _find(lib, name, asset_type)
    assert lib is not None
    return _to_model(lib.root, row)


# ---- files ---------------------------------------------------------------------------------


def copy_file(src: Path, dst: Path) -> str:
    """Copy src to dst through a temp file in dst's folder and a rename; return the sha256."""
    try:
        return files.copy(src, dst)
    except OSError as e:
        raise Stage5Error(f"cannot copy {src} to {dst}: {e.strerror or e}") from None


def _referenced(lib: Library) -> set[str]:
    return {r[0] for r in lib.db.execute("SELECT image_key_url FROM global_assets")}


def _drop_unreferenced(lib: Library, candidates: set[str]) -> None:
    keep = _referenced(lib)
    for rel in candidates - keep:
        with contextlib.suppress(OSError):
            (lib.root / rel).unlink()


# ---- promote -------------------------------------------------------------------------------


def _style_of(project: Project, row: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(style id, name, sha256) the asset's image was made in, as far as it is known."""
    if row["visual_style_capsule_id"] is not None:
        s = project.db.execute("SELECT style_id, name, sha256 FROM style_capsules WHERE id = ?",
                               [row["visual_style_capsule_id"]]).fetchone()
        if s:
            return s[0], s[1], s[2]
    src = store.meta_of(row).get("library") or {}
    if src.get("style_id"):
        return src.get("style_id"), src.get("style_name"), src.get("style_sha256")
    return None, None, None


def promote(project: Project, refs: list[str], *, overwrite: bool = False) -> list[dict[str, Any]]:
    """Copy assets (with their image) into the global library, all or nothing.

    Returns one {asset, type, library_id, action ('added'|'replaced'), image_sha256} per asset.
    """
    if not refs:
        raise UsageError("name at least one asset to promote")
    picked: dict[int, dict[str, Any]] = {}
    for ref in refs:
        row = store.resolve(project, ref)
        picked.setdefault(row["id"], row)
    for row in picked.values():
        rel = row["image_key_url"]
        if not rel or not (project.root / rel).is_file():
            what = "no image key" if not rel else f"no image file on disk ({rel})"
            raise BlockedError(f"asset {row['name']!r} has {what}: run stage5 generate "
                               f"{store.quoted(row['name'])} first (the library keeps images)")
        if not row["locked"]:
            raise BlockedError(f"asset {row['name']!r} is not locked: only signed-off assets go "
                               f"into the library; run stage5 lock {store.quoted(row['name'])} first")
    keys = [(r["name"].lower(), r["asset_type"]) for r in picked.values()]
    if len(set(keys)) < len(keys):
        raise UsageError("two of the named assets share a name and type; promote them one at a time")
    lib = open_library(create=True)
    assert lib is not None
    existing = {(r["name"].lower(), r["asset_type"]): r
                for r in lib.db.query("SELECT * FROM global_assets")}
    clashes = [r for r in picked.values() if (r["name"].lower(), r["asset_type"]) in existing]
    if clashes and not overwrite:
        c = clashes[0]
        raise UsageError(f"the library already has {c['asset_type']} {c['name']!r}: "
                         "pass --overwrite to replace it")
    # Copy the images first (content-addressed, so a copy never clobbers another asset's file).
    copied: set[str] = set()
    shas: dict[int, tuple[str, str]] = {}
    try:
        for row in picked.values():
            src = project.root / row["image_key_url"]
            sha = files.sha256_of(src)
            rel = f"{IMAGES}/{sha}{src.suffix.lower() or '.png'}"
            if not (lib.root / rel).is_file():
                copy_file(src, lib.root / rel)
                copied.add(rel)
            shas[row["id"]] = (sha, rel)
        out: list[dict[str, Any]] = []
        replaced_images: set[str] = set()
        at = now()
        with atomic(project.db), atomic(lib.db):
            for row in picked.values():
                sha, rel = shas[row["id"]]
                style_id, style_name, style_sha = _style_of(project, row)
                record = {
                    "name": row["name"], "asset_type": row["asset_type"],
                    "description": row["description"] or "", "image_prompt": row["image_prompt"],
                    "image_key_url": rel, "image_sha256": sha,
                    "visual_style_capsule_id": style_id, "style_sha256": style_sha,
                    "style_name": style_name, "voice_profile_id": row["voice_profile_id"],
                    "promoted_from_project_id": project.uid,
                    "promoted_from_project_name": project.root.name,
                    "promoted_from_asset_id": row["id"],
                    "aliases": dumps(store.meta_of(row).get("aliases", [])),
                    "updated_at": at,
                }
                old = existing.get((row["name"].lower(), row["asset_type"]))
                if old is None:
                    gid = lib.db["global_assets"].insert({**record, "created_at": at}).last_pk
                    action = "added"
                else:
                    lib.db["global_assets"].update(old["id"], record)
                    gid = old["id"]
                    action = "replaced"
                    replaced_images.add(old["image_key_url"])
                out.append({"asset": row["name"], "type": row["asset_type"], "asset_id": row["id"],
                            "library_id": gid, "action": action, "image_sha256": sha})
            project.record_event("promote", {
                "summary": {"promoted": len(out)}, "library": str(lib.path), "promoted": out,
                # The project itself does not change: undo has nothing to put back here.
                "before": {"assets": [], "mentions": [], "jobs": []}, "touched": [],
            })
    except BaseException:
        _drop_unreferenced(lib, copied)
        raise
    _drop_unreferenced(lib, replaced_images)
    return out


# ---- use -----------------------------------------------------------------------------------


def _taken(project: Project, new_name: str) -> dict[str, dict]:
    """Every name and alias of the branch (lower-cased); UsageError if `new_name` is one."""
    taken: dict[str, dict] = {}
    for r in store.rows(project):
        for n in [r["name"], *store.meta_of(r).get("aliases", [])]:
            taken.setdefault(n.lower(), r)
    if new_name.lower() in taken:
        r = taken[new_name.lower()]
        raise UsageError(f"the project already has an asset named {new_name!r} "
                         f"({r['asset_type']} {r['name']!r}, id {r['id']}): "
                         "pass --as NEW_NAME")
    return taken


def use(project: Project, name: str, *, as_name: str | None = None,
        asset_type: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Copy a library asset (and its image) into the project's active branch as a new,
    unlocked asset of origin 'library'. Returns (the new project row, warnings)."""
    project.require_draft("use a library asset")
    lib = open_library()
    row = _find(lib, name, asset_type)
    assert lib is not None
    new_name = store.check_name(as_name if as_name is not None else row["name"])
    taken = _taken(project, new_name)
    src = lib.root / row["image_key_url"]
    if not src.is_file():
        raise Stage5Error(f"the library image of {row['name']!r} is missing ({src}); "
                          f"promote it again or run stage5 library remove {store.quoted(row['name'])}")
    warnings: list[str] = []
    locked = project.locked_style()
    style_capsule_id = None
    if locked is None:
        warnings.append("the project has no locked style yet; the library image was made in "
                        f"style {row['visual_style_capsule_id'] or 'unknown'}")
    elif row["style_sha256"] and row["style_sha256"] == locked[0]["sha256"]:
        style_capsule_id = locked[0]["id"]
    else:
        warnings.append(
            f"{row['name']!r} was made in style {row['visual_style_capsule_id'] or 'unknown'} "
            f"(sha256 {(row['style_sha256'] or '?')[:12]}) but the project is locked to "
            f"{locked[0]['style_id']} (sha256 {locked[0]['sha256'][:12]}); run stage5 generate "
            f"{store.quoted(new_name)} to redraw it in the project's style")
    aliases = [a for a in loads(row["aliases"], [])
               if a.lower() not in taken and a.lower() != new_name.lower()]
    if new_name.lower() != row["name"].lower() and row["name"].lower() not in taken:
        aliases.append(row["name"])
    project.images_dir.mkdir(parents=True, exist_ok=True)
    files.require_inside(project.root, project.images_dir, "images/")
    fname = f"lib{row['id']}-{row['image_sha256'][:12]}{src.suffix.lower() or '.png'}"
    rel = f"images/{fname}"
    dst = project.root / rel
    made = not dst.exists()
    if made:
        copy_file(src, dst)
    metadata = {
        "aliases": sorted(set(aliases), key=str.lower), "user_fields": [],
        "library": {
            "id": row["id"], "name": row["name"], "style_id": row["visual_style_capsule_id"],
            "style_name": row["style_name"], "style_sha256": row["style_sha256"],
            "image_sha256": row["image_sha256"],
            "promoted_from_project_id": row["promoted_from_project_id"],
            "promoted_from_asset_id": row["promoted_from_asset_id"], "used_at": now(),
        },
    }
    try:
        with atomic(project.db):
            # the name check again, inside the transaction that adds: two `library use` at
            # once never add the asset twice
            project.require_draft("use a library asset")
            _taken(project, new_name)
            aid = store.insert_asset(
                project, name=new_name, asset_type=row["asset_type"],
                description=row["description"], metadata=metadata, origin="library",
                image_key_url=rel, image_prompt=row["image_prompt"],
                style_capsule_id=style_capsule_id)
            project.record_event("library use", {
                "summary": {"added": 1}, "library_id": row["id"], "name": new_name,
                "before": {"assets": [], "mentions": [], "jobs": []}, "touched": [aid],
            })
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                dst.unlink()
        raise
    return store.row_of(project, aid), warnings


# ---- remove --------------------------------------------------------------------------------


def remove(name: str, asset_type: str | None = None) -> LibraryAsset:
    """Delete a library asset (and its image file when nothing else uses it)."""
    lib = open_library()
    row = _find(lib, name, asset_type)
    assert lib is not None
    gone = _to_model(lib.root, row)
    with atomic(lib.db):
        lib.db.execute("DELETE FROM global_assets WHERE id = ?", [row["id"]])
    _drop_unreferenced(lib, {row["image_key_url"]})
    return gone

