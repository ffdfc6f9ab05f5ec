"""Writing assets: insert, update, delete and the moves a merge makes, and the snapshots of
rows that `undo` puts back (history.py). Call these inside the caller's `atomic()`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from stage5cli.db import dumps, now
from stage5cli.project import Project

from .read import by_ids


def insert_asset(project: Project, *, name: str, asset_type: str, description: str = "",
                 metadata: dict[str, Any] | None = None, origin: str = "extracted",
                 mentions: list[dict] | None = None, image_key_url: str | None = None,
                 image_prompt: str | None = None, style_capsule_id: int | None = None,
                 branch_id: int | None = None, at: str | None = None) -> int:
    """Insert one asset (and its mentions) into the active branch, or `branch_id`; `at` is the
    creation time."""
    return insert_assets(project, [{
        "name": name, "asset_type": asset_type, "description": description,
        "metadata": metadata, "origin": origin, "mentions": mentions,
        "image_key_url": image_key_url, "image_prompt": image_prompt,
        "visual_style_capsule_id": style_capsule_id}], branch_id=branch_id, at=at)[0]


_ASSET_COLUMNS = ("id", "branch_id", "name", "asset_type", "description", "image_prompt",
                  "image_key_url", "locked", "visual_style_capsule_id", "voice_profile_id",
                  "metadata", "origin", "stale", "created_at", "updated_at")


def insert_assets(project: Project, assets: Iterable[dict[str, Any]], *,
                  branch_id: int | None = None, at: str | None = None) -> list[int]:
    """Insert many assets (and their mentions) into the active branch, or `branch_id`, all
    created at `at`; returns their ids in order. Each dict holds `name` and `asset_type`, and
    optionally `description`, `metadata` (a dict), `origin`, `mentions` (an iterable of dicts
    with scene_number, text, context), `image_key_url`, `image_prompt`,
    `visual_style_capsule_id`.

    Call inside the caller's `atomic()`: the ids are the ones SQLite itself would choose (one
    past the largest), taken explicitly so that one statement inserts every asset and one
    every mention (a 20,000-asset extraction made 40,000 statements before). `assets` is read
    once, lazily, as SQLite takes the rows: a generator never holds every row at once."""
    db = project.db
    at = at or now()
    branch = project.branch_id if branch_id is None else branch_id
    first = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM project_assets").fetchone()[0]
    ids: list[int] = []
    mentions: list[tuple[int, int, str, str]] = []
    empty_meta = {"aliases": [], "user_fields": []}

    def rows() -> Iterator[tuple]:
        for a in assets:
            aid = first + len(ids)
            ids.append(aid)
            mentions.extend((aid, m["scene_number"], m.get("text", ""), m.get("context", ""))
                            for m in a.get("mentions") or ())
            yield (aid, branch, a["name"], a["asset_type"], a.get("description", ""),
                   a.get("image_prompt"), a.get("image_key_url"), 0,
                   a.get("visual_style_capsule_id"), None,
                   dumps(a.get("metadata") or empty_meta), a.get("origin", "extracted"), 0, at, at)

    db.conn.executemany(
        f"INSERT INTO project_assets ({', '.join(_ASSET_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_ASSET_COLUMNS))})", rows())
    if mentions:
        db.conn.executemany("INSERT INTO asset_mentions (asset_id, scene_number, text, context) "
                            "VALUES (?, ?, ?, ?)", mentions)
    return ids


def add_mentions(project: Project, asset_id: int, mentions: Iterable[dict]) -> None:
    project.db.conn.executemany(
        "INSERT INTO asset_mentions (asset_id, scene_number, text, context) VALUES (?, ?, ?, ?)",
        [(asset_id, m["scene_number"], m.get("text", ""), m.get("context", "")) for m in mentions])


def replace_mentions(project: Project, asset_id: int, mentions: Iterable[dict]) -> None:
    project.db.execute("DELETE FROM asset_mentions WHERE asset_id = ?", [asset_id])
    add_mentions(project, asset_id, mentions)


def update_asset(project: Project, asset_id: int, **cols: Any) -> None:
    """Set columns of one asset (a metadata dict is stored as JSON) and its updated_at."""
    cols["updated_at"] = now()
    if "metadata" in cols and not isinstance(cols["metadata"], str):
        cols["metadata"] = dumps(cols["metadata"])
    sets = ", ".join(f"{k} = ?" for k in cols)
    project.db.execute(f"UPDATE project_assets SET {sets} WHERE id = ?", [*cols.values(), asset_id])


def own_fields(meta: dict[str, Any], fields: Iterable[str]) -> None:
    """Mark fields as the user's (metadata["user_fields"]): re-extraction keeps them."""
    owned = list(meta.get("user_fields", []))
    for f in fields:
        if f not in owned:
            owned.append(f)
    meta["user_fields"] = owned


def delete_assets(project: Project, ids: list[int]) -> None:
    """Delete these assets; their mentions and jobs go with them (ON DELETE CASCADE)."""
    if ids:
        marks = ",".join("?" * len(ids))
        project.db.execute(f"DELETE FROM project_assets WHERE id IN ({marks})", ids)


def move_mentions(project: Project, mention_ids: list[int], asset_id: int) -> None:
    for mid in mention_ids:
        project.db.execute("UPDATE asset_mentions SET asset_id = ? WHERE id = ?", [asset_id, mid])


def move_jobs(project: Project, from_ids: list[int], asset_id: int) -> None:
    """Hand the image jobs of `from_ids` to `asset_id`."""
    if from_ids:
        marks = ",".join("?" * len(from_ids))
        project.db.execute(
            f"UPDATE image_generation_jobs SET asset_id = ? WHERE asset_id IN ({marks})",
            [asset_id, *from_ids])


# ---- snapshots (the history that undo reads) ------------------------------------------------


def snapshot(project: Project, ids: list[int]) -> dict[str, list[dict]]:
    """Every row that belongs to these assets, exactly as stored."""
    if not ids:
        return {"assets": [], "mentions": [], "jobs": []}
    marks = ",".join("?" * len(ids))
    db = project.db
    return {
        "assets": by_ids(project, ids),
        "mentions": list(db.query(f"SELECT * FROM asset_mentions WHERE asset_id IN ({marks})", ids)),
        "jobs": list(db.query(f"SELECT * FROM image_generation_jobs WHERE asset_id IN ({marks})", ids)),
    }


def restore(project: Project, before: dict[str, list[dict]], touched: list[int]) -> None:
    """Put back `before` exactly, removing whatever the change made (call inside atomic())."""
    ids = sorted(set(touched) | {a["id"] for a in before["assets"]})
    delete_assets(project, ids)
    db = project.db
    if before["assets"]:
        db["project_assets"].insert_all(before["assets"])
    if before["mentions"]:
        db["asset_mentions"].insert_all(before["mentions"])
    if before["jobs"]:
        db["image_generation_jobs"].insert_all(before["jobs"])


def curation_snapshot(project: Project) -> list[dict]:
    """This branch's curation records (removals and merges, m003), exactly as stored."""
    return list(project.db.query("SELECT * FROM curation_records WHERE branch_id = ? ORDER BY id",
                                 [project.branch_id]))


def restore_curation(project: Project, rows: list[dict]) -> None:
    """Put this branch's curation records back as `rows` (undo; call inside atomic())."""
    project.db.execute("DELETE FROM curation_records WHERE branch_id = ?", [project.branch_id])
    for r in rows:
        project.db.table("curation_records").insert(r)
