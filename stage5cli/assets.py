"""The asset store: reading, naming, saving extraction results, snapshots for undo."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .db import atomic, dumps, loads, now
from .errors import BlockedError, NotFoundError, UsageError
from .models import ASSET_TYPES, ExtractedAsset
from .project import Project
from .styles import suggest

MAX_NAME = 120
MAX_DESCRIPTION = 4000
CONTEXT_QUOTES = 5  # context quotes kept in metadata.source_mentions


class AssetView(BaseModel):
    """One asset as `review --json`, `show --json` and `export` print it."""

    id: int
    name: str
    type: str
    aliases: list[str]
    description: str
    confidence_score: float | None
    is_priority: bool
    has_conflicts: bool
    conflict_details: str
    scenes: list[int]
    image_key_url: str | None
    image_prompt: str | None
    locked: bool
    origin: str
    stale: bool
    user_fields: list[str]
    extractor: str | None
    model: str | None
    # from readiness.assess: ok | missing | failed | off-style | stale | placeholder
    image_state: str | None = None
    image_backend: str | None = None  # what made the image key (placeholder, diffusers, api)


def _norm(name: str) -> str:
    from .extract.merge import norm_name

    return norm_name(name)


def view(row: dict[str, Any], scenes: list[int], *, project: Project | None = None,
         state: Any = None) -> AssetView:
    """One asset as printed; its image state comes from `state` (a readiness.AssetReadiness)
    or, given the project, is assessed for this row alone."""
    meta = loads(row["metadata"], {})
    if state is None and project is not None:
        from .readiness import asset_state, failed_last

        state = asset_state(project, row, style=project.locked_style(),
                            last_job_failed=row["id"] in failed_last(project))
    return AssetView(
        id=row["id"], name=row["name"], type=row["asset_type"],
        aliases=meta.get("aliases", []), description=row["description"] or "",
        confidence_score=meta.get("confidence_score"), is_priority=bool(meta.get("is_priority")),
        has_conflicts=bool(meta.get("has_conflicts")),
        conflict_details=meta.get("conflict_details") or "", scenes=scenes,
        image_key_url=row["image_key_url"], image_prompt=row["image_prompt"],
        locked=bool(row["locked"]), origin=row["origin"], stale=bool(row["stale"]),
        user_fields=meta.get("user_fields", []), extractor=meta.get("extractor"),
        model=meta.get("model"),
        image_state=None if state is None else state.image_state,
        image_backend=None if state is None else state.image_backend,
    )


def rows(project: Project, *, asset_type: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM project_assets WHERE branch_id = ?"
    args: list[Any] = [project.branch_id]
    if asset_type:
        sql += " AND asset_type = ?"
        args.append(asset_type)
    order = "CASE asset_type WHEN 'character' THEN 0 WHEN 'location' THEN 1 ELSE 2 END"
    return list(project.db.query(sql + f" ORDER BY {order}, lower(name)", args))


def scenes_by_asset(project: Project, ids: list[int] | None = None) -> dict[int, list[int]]:
    sql = ("SELECT m.asset_id, m.scene_number FROM asset_mentions m JOIN project_assets a "
           "ON a.id = m.asset_id WHERE a.branch_id = ?")
    out: dict[int, set[int]] = {}
    for r in project.db.query(sql, [project.branch_id]):
        out.setdefault(r["asset_id"], set()).add(r["scene_number"])
    return {k: sorted(v) for k, v in out.items() if ids is None or k in ids}


def list_views(project: Project, *, asset_type: str | None = None,
               conflicts_only: bool = False) -> list[AssetView]:
    if asset_type and asset_type not in ASSET_TYPES:
        raise UsageError(f"unknown type {asset_type!r}: use one of {', '.join(ASSET_TYPES)}")
    from .readiness import assess

    scenes = scenes_by_asset(project)
    states = assess(project).by_id()
    out = [view(r, scenes.get(r["id"], []), state=states.get(r["id"]))
           for r in rows(project, asset_type=asset_type)]
    return [v for v in out if v.has_conflicts] if conflicts_only else out


# ---- naming --------------------------------------------------------------------------------


def resolve(project: Project, ref: str) -> dict[str, Any]:
    """An asset by id or by name/alias, case-insensitive; exit 2 with suggestions if unknown."""
    ref = ref.strip()
    if not ref:
        raise UsageError("an asset name cannot be empty")
    all_rows = rows(project)
    if ref.isdigit():
        for r in all_rows:
            if r["id"] == int(ref):
                return r
    low = ref.lower()
    exact = [r for r in all_rows if r["name"].lower() == low]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise UsageError(_ambiguous(ref, exact))
    key = _norm(ref)
    by_alias = [
        r for r in all_rows
        if low in (a.lower() for a in loads(r["metadata"], {}).get("aliases", []))
        or (key and (key == _norm(r["name"])
                     or key in {_norm(a) for a in loads(r["metadata"], {}).get("aliases", [])}))
    ]
    if len(by_alias) == 1:
        return by_alias[0]
    if len(by_alias) > 1:
        raise UsageError(_ambiguous(ref, by_alias))
    names = [r["name"] for r in all_rows]
    for r in all_rows:
        names.extend(loads(r["metadata"], {}).get("aliases", []))
    hint = suggest(ref, names) or ("; the project has no assets yet" if not all_rows else "")
    raise NotFoundError(f"no asset named {ref!r}{hint}")


def _ambiguous(ref: str, found: list[dict]) -> str:
    listed = ", ".join(f"{r['name']} (id {r['id']}, {r['asset_type']})" for r in found[:8])
    return f"{ref!r} is ambiguous: {listed}; use the id"


def require_unlocked(row: dict[str, Any], action: str) -> None:
    if row["locked"]:
        raise BlockedError(
            f"asset {row['name']!r} is locked: run stage5 unlock {row['name']!r} to {action} it"
        )


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise UsageError("an asset name cannot be empty")
    if len(name) > MAX_NAME:
        raise UsageError(f"an asset name is at most {MAX_NAME} characters")
    return name


def check_description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise UsageError(f"a description is at most {MAX_DESCRIPTION} characters (got {len(text)})")
    return text


def check_type(asset_type: str) -> str:
    t = asset_type.strip().lower()
    if t not in ASSET_TYPES:
        raise UsageError(f"unknown type {asset_type!r}: use one of {', '.join(ASSET_TYPES)}")
    return t


# ---- snapshots (the history that undo reads) ------------------------------------------------


def snapshot(project: Project, ids: list[int]) -> dict[str, list[dict]]:
    """Every row that belongs to these assets, exactly as stored."""
    if not ids:
        return {"assets": [], "mentions": [], "jobs": []}
    marks = ",".join("?" * len(ids))
    db = project.db
    return {
        "assets": list(db.query(f"SELECT * FROM project_assets WHERE id IN ({marks})", ids)),
        "mentions": list(db.query(f"SELECT * FROM asset_mentions WHERE asset_id IN ({marks})", ids)),
        "jobs": list(db.query(f"SELECT * FROM image_generation_jobs WHERE asset_id IN ({marks})", ids)),
    }


def restore(project: Project, before: dict[str, list[dict]], touched: list[int]) -> None:
    """Put back `before` exactly, removing whatever the change made (call inside atomic())."""
    ids = sorted(set(touched) | {a["id"] for a in before["assets"]})
    db = project.db
    if ids:
        marks = ",".join("?" * len(ids))
        db.execute(f"DELETE FROM project_assets WHERE id IN ({marks})", ids)  # cascades
    if before["assets"]:
        db["project_assets"].insert_all(before["assets"])
    if before["mentions"]:
        db["asset_mentions"].insert_all(before["mentions"])
    if before["jobs"]:
        db["image_generation_jobs"].insert_all(before["jobs"])


# ---- writing -------------------------------------------------------------------------------


def _metadata(asset: ExtractedAsset, extractor: str, model: str | None) -> dict[str, Any]:
    quotes = [m.model_dump() for m in asset.mentions if m.context][:CONTEXT_QUOTES]
    return {
        "aliases": sorted(set(asset.aliases) - {asset.name}, key=str.lower),
        "confidence_score": round(float(asset.confidence_score), 3),
        "is_priority": bool(asset.is_priority),
        "has_conflicts": bool(asset.has_conflicts),
        "conflict_details": asset.conflict_details or "",
        "source_mentions": quotes,
        "extractor": extractor,
        "model": model,
        "user_fields": [],
    }


def insert_asset(project: Project, *, name: str, asset_type: str, description: str = "",
                 metadata: dict[str, Any] | None = None, origin: str = "extracted",
                 mentions: list[dict] | None = None, image_key_url: str | None = None,
                 image_prompt: str | None = None, style_capsule_id: int | None = None) -> int:
    at = now()
    aid = project.db["project_assets"].insert({
        "branch_id": project.branch_id, "name": name, "asset_type": asset_type,
        "description": description, "image_prompt": image_prompt,
        "image_key_url": image_key_url, "locked": 0,
        "visual_style_capsule_id": style_capsule_id, "voice_profile_id": None,
        "metadata": dumps(metadata or {"aliases": [], "user_fields": []}),
        "origin": origin, "stale": 0, "created_at": at, "updated_at": at,
    }).last_pk
    if mentions:
        project.db["asset_mentions"].insert_all(
            [{"asset_id": aid, "scene_number": m["scene_number"], "text": m.get("text", ""),
              "context": m.get("context", "")} for m in mentions]
        )
    return aid


def _keys(name: str, aliases: list[str]) -> set[str]:
    return {k for k in (_norm(x) for x in [name, *aliases]) if k}


def save_extraction(project: Project, extracted: list[ExtractedAsset], *, extractor: str,
                    model: str | None, script_path: str, script_sha256: str) -> dict[str, Any]:
    """Write an extraction in one transaction; re-extraction updates in place.

    Stored assets are matched by type and name/alias. Fields the user edited, merged or
    locked assets are never overwritten; new assets are added; extracted assets that vanished
    from the script are marked stale, not deleted.
    """
    project.require_draft("extract")
    existing = rows(project)
    report: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": [], "kept_locked": [],
                                    "stale": [], "revived": []}
    with atomic(project.db):
        before = snapshot(project, [r["id"] for r in existing])
        index: dict[tuple[str, str], dict] = {}
        retyped: dict[str, dict] = {}  # assets whose type the user changed match any type
        for r in existing:
            meta = loads(r["metadata"], {})
            for k in _keys(r["name"], meta.get("aliases", [])):
                index.setdefault((r["asset_type"], k), r)
                if "type" in meta.get("user_fields", []):
                    retyped.setdefault(k, r)
        matched: dict[int, list[ExtractedAsset]] = {}
        new: list[ExtractedAsset] = []
        for a in extracted:
            keys = _keys(a.name, a.aliases)
            hit = next((index[(a.type, k)] for k in keys if (a.type, k) in index), None)
            if hit is None:
                hit = next((retyped[k] for k in keys if k in retyped), None)
            if hit is None:
                new.append(a)
            else:
                matched.setdefault(hit["id"], []).append(a)
        touched: list[int] = []
        by_id = {r["id"]: r for r in existing}
        for aid, found in matched.items():
            r = by_id[aid]
            if r["locked"]:
                report["kept_locked"].append(r["name"])
                continue
            if _update_from_extraction(project, r, found, extractor, model):
                report["updated"].append(r["name"])
            else:
                report["unchanged"].append(r["name"])
            if r["stale"]:
                report["revived"].append(r["name"])
            touched.append(aid)
        for a in new:
            aid = insert_asset(
                project, name=a.name, asset_type=a.type, description=a.description,
                metadata=_metadata(a, extractor, model),
                mentions=[m.model_dump() for m in a.mentions],
            )
            touched.append(aid)
            report["added"].append(a.name)
        for r in existing:
            if r["id"] not in matched and r["origin"] == "extracted" and not r["stale"]:
                project.db.execute("UPDATE project_assets SET stale = 1, updated_at = ? WHERE id = ?",
                                   [now(), r["id"]])
                report["stale"].append(r["name"])
                touched.append(r["id"])
        stage_before = project.stage()
        project.db.execute(
            "UPDATE stage_state SET script_path = ?, script_sha256 = ? WHERE branch_id = ?",
            [script_path, script_sha256, project.branch_id],
        )
        summary = {k: len(v) for k, v in report.items()}
        project.record_event("extract", {
            "summary": summary, "script": script_path, "extractor": extractor, "model": model,
            "before": before, "touched": touched, "stage_before": stage_before,
        })
    return report


def _update_from_extraction(project: Project, row: dict, found: list[ExtractedAsset],
                            extractor: str, model: str | None) -> bool:
    meta = loads(row["metadata"], {})
    user = set(meta.get("user_fields", []))
    best = max(found, key=lambda a: (len(a.mentions), a.confidence_score))
    fresh = _metadata(best, extractor, model)
    aliases = set(meta.get("aliases", []))
    for a in found:
        aliases.update(a.aliases)
        if a.name != row["name"]:
            aliases.add(a.name)
    aliases.discard(row["name"])
    new_meta = dict(meta)
    if "aliases" not in user:
        new_meta["aliases"] = sorted(aliases, key=str.lower)
    for key in ("confidence_score", "has_conflicts", "conflict_details", "source_mentions",
                "extractor", "model"):
        if key not in user and not (key in ("has_conflicts", "conflict_details")
                                    and meta.get("conflict_resolution")):
            new_meta[key] = fresh[key]
    if "is_priority" not in user:
        new_meta["is_priority"] = fresh["is_priority"]
    description = row["description"]
    if "description" not in user and best.description:
        description = best.description
    mentions = {(m.scene_number, m.text, m.context) for a in found for m in a.mentions}
    old_mentions = {(r["scene_number"], r["text"], r["context"]) for r in project.db.query(
        "SELECT scene_number, text, context FROM asset_mentions WHERE asset_id = ?", [row["id"]])}
    changed = (description != row["description"] or new_meta != meta or mentions != old_mentions
               or row["stale"])
    if not changed:
        return False
    project.db.execute(
        "UPDATE project_assets SET description = ?, metadata = ?, stale = 0, updated_at = ? "
        "WHERE id = ?", [description, dumps(new_meta), now(), row["id"]])
    if mentions != old_mentions:
        project.db.execute("DELETE FROM asset_mentions WHERE asset_id = ?", [row["id"]])
        project.db["asset_mentions"].insert_all(
            [{"asset_id": row["id"], "scene_number": s, "text": t, "context": c}
             for s, t, c in sorted(mentions)])
    return True


