"""Reading assets: rows, their metadata and mentions, image references, and the views that
`review`, `show`, `conflicts` and `export` print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stage5cli.db import loads
from stage5cli.errors import UsageError
from stage5cli.project import Project
from stage5cli.records import ASSET_TYPES, Record

if TYPE_CHECKING:
    from stage5cli.models import ExtractedAsset


# Plain dataclasses (records.Record: `model_dump()` as a pydantic model gives it), so that
# review and show never import pydantic; they are made from the database, never from input.


@dataclass(kw_only=True)
class AssetView(Record):
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
    category: str = "props"
    # from readiness.assess: ok | missing | failed | off-style | stale | placeholder
    image_state: str | None = None
    image_backend: str | None = None  # what made the image key (placeholder, diffusers, api)
    category_info: dict = field(default_factory=dict)


@dataclass(kw_only=True)
class MentionView(Record):
    scene_number: int
    text: str
    context: str


def meta_of(row: dict[str, Any]) -> dict[str, Any]:
    """A row's metadata as a fresh dict (changing it changes nothing until update_asset)."""
    return dict(loads(row["metadata"], {}) or {})


def view(row: dict[str, Any], scenes: list[int], *, state: Any = None) -> AssetView:
    """One asset as printed; its image state comes from `state` (a readiness.AssetReadiness:
    readiness.view and readiness.list_views assess it)."""
    meta = meta_of(row)
    confidence = meta.get("confidence_score")
    return AssetView(
        id=row["id"], name=row["name"], type=row["asset_type"],
        aliases=list(meta.get("aliases", [])), description=row["description"] or "",
        confidence_score=None if confidence is None else float(confidence),
        is_priority=bool(meta.get("is_priority")),
        has_conflicts=bool(meta.get("has_conflicts")),
        conflict_details=meta.get("conflict_details") or "", scenes=scenes,
        image_key_url=row["image_key_url"], image_prompt=row["image_prompt"],
        locked=bool(row["locked"]), origin=row["origin"], stale=bool(row["stale"]),
        user_fields=list(meta.get("user_fields", [])), extractor=meta.get("extractor"),
        model=meta.get("model"),
        category=_category(meta, row["asset_type"]),
        category_info=dict(meta.get("category_info") or {}),
        image_state=None if state is None else state.image_state,
        image_backend=None if state is None else state.image_backend,
    )


def type_error(asset_type: str) -> UsageError:
    return UsageError(f"unknown type {asset_type!r}: use one of {', '.join(ASSET_TYPES)}")


# ---- rows ----------------------------------------------------------------------------------


def _category(meta: dict[str, Any], asset_type: str) -> str:
    from stage5cli.breakdown.categories import default_category, normalize_category

    return normalize_category(meta.get("category")) or default_category(asset_type)


def rows(project: Project, *, asset_type: str | None = None) -> list[dict[str, Any]]:
    """The active branch's assets: characters, locations, props, each by name."""
    sql = "SELECT * FROM project_assets WHERE branch_id = ?"
    args: list[Any] = [project.branch_id]
    if asset_type:
        sql += " AND asset_type = ?"
        args.append(asset_type)
    order = "CASE asset_type WHEN 'character' THEN 0 WHEN 'location' THEN 1 ELSE 2 END"
    return list(project.db.query(sql + f" ORDER BY {order}, lower(name)", args))


def row_of(project: Project, asset_id: int) -> dict[str, Any]:
    return next(project.db.query("SELECT * FROM project_assets WHERE id = ?", [asset_id]))


def by_ids(project: Project, ids: list[int]) -> list[dict[str, Any]]:
    """The rows of these ids, on whatever branch they are."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return list(project.db.query(f"SELECT * FROM project_assets WHERE id IN ({marks})", ids))


def mentions_of(project: Project, asset_id: int) -> list[dict[str, Any]]:
    return list(project.db.query(
        "SELECT * FROM asset_mentions WHERE asset_id = ? ORDER BY scene_number, id", [asset_id]))


def jobs_of(project: Project, asset_id: int) -> list[dict[str, Any]]:
    """The asset's image generation jobs, oldest first."""
    return list(project.db.query(
        "SELECT * FROM image_generation_jobs WHERE asset_id = ? ORDER BY id", [asset_id]))


def scenes_by_asset(project: Project, ids: list[int] | None = None) -> dict[int, list[int]]:
    sql = ("SELECT m.asset_id, m.scene_number FROM asset_mentions m JOIN project_assets a "
           "ON a.id = m.asset_id WHERE a.branch_id = ?")
    out: dict[int, set[int]] = {}
    for r in project.db.query(sql, [project.branch_id]):
        out.setdefault(r["asset_id"], set()).add(r["scene_number"])
    return {k: sorted(v) for k, v in out.items() if ids is None or k in ids}


def image_refs(project: Project, ids: list[int]) -> list[str | None]:
    """The image paths these assets point at: their image keys, then their jobs' outputs."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    refs = [r[0] for r in project.db.execute(
        f"SELECT image_key_url FROM project_assets WHERE id IN ({marks})", ids)]
    refs += [r[0] for r in project.db.execute(
        f"SELECT image_path FROM image_generation_jobs WHERE asset_id IN ({marks})", ids)]
    return refs


def all_image_refs(project: Project) -> list[str]:
    """Every image path any asset or job of any branch points at, once each."""
    return [r[0] for r in project.db.execute(
        "SELECT image_key_url FROM project_assets WHERE image_key_url IS NOT NULL "
        "UNION SELECT image_path FROM image_generation_jobs WHERE image_path IS NOT NULL")]


# ---- views ---------------------------------------------------------------------------------


def asset_view(project: Project, asset_id: int) -> AssetView:
    scenes = sorted({m["scene_number"] for m in mentions_of(project, asset_id)})
    return view(row_of(project, asset_id), scenes)


def list_views(project: Project, *, asset_type: str | None = None,
               conflicts_only: bool = False, states: dict[int, Any] | None = None
               ) -> list[AssetView]:
    """The assets as printed; `states` (asset id -> readiness.AssetReadiness) fills in their
    image state (readiness.list_views passes them)."""
    if asset_type and asset_type not in ASSET_TYPES:
        raise type_error(asset_type)
    scenes = scenes_by_asset(project)
    states = states or {}
    out = [view(r, scenes.get(r["id"], []), state=states.get(r["id"]))
           for r in rows(project, asset_type=asset_type)]
    return [v for v in out if v.has_conflicts] if conflicts_only else out


def as_extracted(project: Project, row: dict[str, Any]) -> ExtractedAsset:
    """A stored asset in the shape an extractor hands over (for describe and conflicts)."""
    from stage5cli.models import ExtractedAsset, Mention

    meta = meta_of(row)
    return ExtractedAsset(
        name=row["name"], type=row["asset_type"], aliases=list(meta.get("aliases", [])),
        mentions=[Mention(scene_number=m["scene_number"], text=m["text"], context=m["context"])
                  for m in mentions_of(project, row["id"])],
        description=row["description"] or "",
        confidence_score=float(meta.get("confidence_score") or 0.0),
        is_priority=bool(meta.get("is_priority")), has_conflicts=bool(meta.get("has_conflicts")),
        conflict_details=meta.get("conflict_details") or "",
    )


# ---- one asset in full (`show`) -------------------------------------------------------------


@dataclass(kw_only=True)
class JobView(Record):
    id: int
    status: str
    backend: str
    model: str | None
    width: int
    height: int
    seed: int | None
    image_path: str | None
    image_exists: bool
    error: str | None
    created_at: str
    finished_at: str | None
    prompt: dict[str, Any] | None = None  # what was sent: tokens, limit, encoder, dropped


@dataclass(kw_only=True)
class AssetDetail(AssetView):
    """Everything about one asset (`show --json`)."""

    image_exists: bool
    metadata: dict[str, Any]
    mentions: list[MentionView]
    jobs: list[JobView]
    created_at: str
    updated_at: str
