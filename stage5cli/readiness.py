"""The one definition of "ready": what each asset's image key is, and what blocks stage 5.

    r = assess(project)                       # -> Readiness (read-only, no heavy imports)
    r.assets[0].image_state                   # ok | missing | failed | off-style | stale | placeholder
    r.assets[0].state                         # the same, or "locked" for a locked asset
    r.blockers, r.warnings                    # grouped by cause, one fix command per group
    r.can_lock                                # nothing blocks (given allow_placeholder/strict)

`status`, `status --check`, `lock-all`, `review`, `show`, the export and the contact sheet all
read it, so they cannot disagree. Image states, in the order they are decided:

- `missing`: no image key, or its file is gone;
- `failed`: no usable image and the asset's last image job failed;
- `off-style`: the image was made under another style than the branch's locked one;
- `stale`: the asset's name, type or description changed since the image was made;
- `placeholder`: a current image from the offline placeholder renderer (an index card);
- `ok`: a current image from a real backend.

Only `ok` counts for `lock-all`; `placeholder` too with `allow_placeholder`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .db import loads
from .provenance import source_sha256
from .records import Record

if TYPE_CHECKING:
    from . import store
    from .project import Project

ImageState = Literal["ok", "missing", "failed", "off-style", "stale", "placeholder"]
AssetState = Literal["ok", "missing", "failed", "off-style", "stale", "placeholder", "locked"]
IMAGE_STATES: tuple[str, ...] = ("ok", "missing", "failed", "off-style", "stale", "placeholder")
PLACEHOLDER = "placeholder"


# Plain dataclasses (records.Record: `model_dump()` as before), not pydantic: status, review and
# show build them for every asset and never parse outside input into them.


@dataclass(slots=True, kw_only=True)
class AssetReadiness(Record):
    id: int
    name: str
    type: str
    image_state: ImageState
    state: AssetState  # image_state, or "locked" for a locked asset
    image_backend: str | None  # what made the image key (None: no image or unknown)
    image_key_url: str | None
    locked: bool
    has_conflicts: bool
    not_in_script: bool  # extracted, but not found in the latest script
    why: str = ""  # a short reason for a state other than ok

    @property
    def has_current_image(self) -> bool:
        """An image in the locked style made from the asset as it is now (real or placeholder)."""
        return self.image_state in ("ok", PLACEHOLDER)


@dataclass(slots=True, kw_only=True)
class Group(Record):
    """One cause, the assets it concerns and the one command that fixes them all."""

    cause: str  # no-style | no-assets | missing | failed | off-style | stale | placeholder |
    #             conflicts | not-in-script
    message: str  # "12 assets have no image"
    fix: str  # "stage5 generate --missing"
    assets: list[str] = field(default_factory=list)
    count: int = 0


@dataclass(slots=True, kw_only=True)
class TypeCounts(Record):
    total: int = 0
    with_image: int = 0  # a current image in the locked style (ok + placeholder)
    ok: int = 0
    placeholder: int = 0
    image_stale: int = 0  # stale + off-style
    no_image: int = 0  # missing + failed
    locked: int = 0
    conflicts: int = 0
    stale: int = 0  # not found in the latest script (the extraction's "stale")


@dataclass(slots=True, kw_only=True)
class Readiness(Record):
    branch: str
    stage_status: str  # draft | locked
    style_id: str | None
    style_sha256: str | None
    allow_placeholder: bool
    strict: bool
    assets: list[AssetReadiness]
    counts: dict[str, TypeCounts]
    blockers: list[Group]
    warnings: list[Group]

    @property
    def can_lock(self) -> bool:
        return not self.blockers

    def by_id(self) -> dict[int, AssetReadiness]:
        return {a.id: a for a in self.assets}

    def summary(self) -> str:
        """One line: the first blocker and how many more causes, or 'ready'."""
        if not self.blockers:
            return "ready"
        first = self.blockers[0]
        more = len(self.blockers) - 1
        return (f"{first.message}: {first.fix}"
                + (f" (and {more} more cause{'s' if more > 1 else ''}: see stage5 status)"
                   if more else ""))


# ---- per asset -------------------------------------------------------------------------------


def _backend_from_png(project: Project, rel: str) -> str | None:
    """The backend recorded in the PNG's stage5 chunk (keys from the library or older stage5)."""
    from .images.png import read_text_chunk

    text = read_text_chunk(project.root / rel, "stage5")
    try:
        meta = json.loads(text) if text else None
    except ValueError:
        return None
    return meta.get("backend") if isinstance(meta, dict) else None


def _style_sha(project: Project, style_row_id: int | None) -> str | None:
    if style_row_id is None:
        return None
    found = project.db.execute("SELECT sha256 FROM style_capsules WHERE id = ?",
                               [style_row_id]).fetchone()
    return found[0] if found else None


def asset_state(project: Project, row: dict, *, style: dict | tuple[dict, object] | None,
                last_job_failed: bool) -> AssetReadiness:
    """`style`: the locked style's row (Project.locked_style_row), or Project.locked_style()'s
    (row, capsule); None: no style is locked."""
    meta = loads(row["metadata"], {})
    rel = row["image_key_url"]
    backend = row.get("image_backend")
    state: str
    why = ""
    if not rel or not (project.root / rel).is_file():
        state = "failed" if last_job_failed else "missing"
        why = ("the last image job failed" if last_job_failed
               else "no image key" if not rel else "the image file is gone")
        backend = None
    else:
        if backend is None:
            backend = _backend_from_png(project, rel)
        style_row = style[0] if isinstance(style, tuple) else style
        stored = row.get("image_source_sha256")
        made_in = _style_sha(project, row["visual_style_capsule_id"])  # the image's own style
        if style_row is not None and row["visual_style_capsule_id"] != style_row["id"]:
            state, why = "off-style", "made in another style"
        elif stored and made_in and stored != source_sha256(
                name=row["name"], asset_type=row["asset_type"],
                description=row["description"] or "", style_sha256=made_in):
            state, why = "stale", "name, type or description changed since the image was made"
        elif backend == PLACEHOLDER:
            state, why = PLACEHOLDER, "an offline placeholder card, not a real image"
        else:
            state = "ok"
    return AssetReadiness(
        id=row["id"], name=row["name"], type=row["asset_type"], image_state=state,  # type: ignore[arg-type]
        state="locked" if row["locked"] else state,  # type: ignore[arg-type]
        image_backend=backend, image_key_url=rel, locked=bool(row["locked"]),
        has_conflicts=bool(meta.get("has_conflicts")),
        not_in_script=bool(row["stale"]), why=why)


def failed_last(project: Project) -> set[int]:
    """Ids of the branch's assets whose newest image job failed."""
    return {r["asset_id"] for r in project.db.query(
        "SELECT j.asset_id, j.status FROM image_generation_jobs j JOIN project_assets a "
        "ON a.id = j.asset_id WHERE a.branch_id = ? AND j.id IN "
        "(SELECT max(id) FROM image_generation_jobs GROUP BY asset_id)", [project.branch_id])
        if r["status"] == "failed"}


# ---- the whole branch ------------------------------------------------------------------------


def _names(names: list[str], limit: int = 5) -> str:
    return " ".join(shlex.quote(n) for n in names[:limit])


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def assess(project: Project, *, allow_placeholder: bool = False, strict: bool = False
           ) -> Readiness:
    """Read-only: the state of every asset on the active branch and what blocks stage 5."""
    from . import store

    st = project.stage()
    style = project.locked_style_row()
    failed = failed_last(project)
    rows = store.rows(project)
    states = [asset_state(project, r, style=style, last_job_failed=r["id"] in failed)
              for r in rows]
    counts = {t: TypeCounts() for t in ("character", "prop", "location")}
    for a in states:
        c = counts.setdefault(a.type, TypeCounts())
        c.total += 1
        c.with_image += a.has_current_image
        c.ok += a.image_state == "ok"
        c.placeholder += a.image_state == PLACEHOLDER
        c.image_stale += a.image_state in ("stale", "off-style")
        c.no_image += a.image_state in ("missing", "failed")
        c.locked += a.locked
        c.conflicts += a.has_conflicts
        c.stale += a.not_in_script

    def names(pred) -> list[str]:
        return [a.name for a in states if pred(a)]

    block: list[Group] = []
    warn: list[Group] = []

    def add(to: list[Group], cause: str, members: list[str], message: str, fix: str) -> None:
        to.append(Group(cause=cause, message=message, fix=fix, assets=members,
                        count=len(members)))

    if style is None:
        add(block, "no-style", [], "no visual style is locked",
            "stage5 style list, then stage5 style lock ID")
    if not states:
        add(block, "no-assets", [], "the branch has no assets (stage 5 needs at least one asset)",
            "stage5 extract SCRIPT, or stage5 add NAME --type TYPE")
    if m := names(lambda a: a.image_state == "missing"):
        add(block, "missing", m, _n(len(m), "asset has no image", "assets have no image"),
            "stage5 generate --missing")
    if m := names(lambda a: a.image_state == "failed"):
        add(block, "failed", m, _n(len(m), "asset's last image job failed",
                                   "assets' last image jobs failed"),
            "stage5 generate --retry-failed")
    if m := names(lambda a: a.image_state == "off-style"):
        add(block, "off-style", m, _n(len(m), "image was made in another style",
                                      "images were made in another style"),
            "stage5 generate --stale")
    if m := names(lambda a: a.image_state == "stale"):
        add(block, "stale", m, _n(len(m), "image is stale (the asset changed since)",
                                  "images are stale (the assets changed since)"),
            "stage5 generate --stale")
    if (m := names(lambda a: a.image_state == PLACEHOLDER)) and not allow_placeholder:
        which = _names(m) if len(m) <= 5 else "--all"
        add(block, PLACEHOLDER, m,
            _n(len(m), "image key is a placeholder", "image keys are placeholders"),
            f"stage5 generate {which} --backend diffusers (or api), or pass --allow-placeholder")
    if m := names(lambda a: a.has_conflicts):
        fix = (f"stage5 conflicts {_names(m)} --apply" if len(m) == 1
               else "stage5 conflicts, then stage5 conflicts NAME --apply (or --resolve TEXT)")
        add(block if strict else warn, "conflicts", m,
            _n(len(m), "asset has an unresolved visual conflict",
               "assets have unresolved visual conflicts"), fix)
    if m := names(lambda a: a.not_in_script):
        add(warn, "not-in-script", m,
            _n(len(m), "asset was not found in the latest script",
               "assets were not found in the latest script"), f"stage5 remove {_names(m, 8)}")
    return Readiness(
        branch=project.branch()["name"], stage_status=st["status"],
        style_id=style["style_id"] if style else None,
        style_sha256=style["sha256"] if style else None,
        allow_placeholder=allow_placeholder, strict=strict, assets=states, counts=counts,
        blockers=block, warnings=warn)


def status(project: Project) -> dict[str, Any]:
    """`status --json`: branch, style, script, counts by type and what blocks stage 5, all read
    from readiness.assess (the same assessment lock-all, review and the contact sheet use)."""
    st = project.stage()
    style = project.locked_style_row()
    r = assess(project)
    return {
        "project": str(project.root),
        "branch": r.branch,
        "stage": st["stage"],
        "status": st["status"],
        "style": None if style is None else {
            "id": style["style_id"], "name": style["name"], "sha256": style["sha256"],
            "locked_at": st["style_locked_at"],
        },
        "script": None if not st["script_path"] else {
            "path": st["script_path"], "sha256": st["script_sha256"]},
        "assets": {t: c.model_dump() for t, c in r.counts.items()},
        "total_assets": sum(c.total for c in r.counts.values()),
        "images": {s: sum(1 for a in r.assets if a.image_state == s) for s in
                   ("ok", "placeholder", "stale", "off-style", "missing", "failed")},
        "blockers": [] if st["status"] == "locked" else [g.model_dump() for g in r.blockers],
        "warnings": [g.model_dump() for g in r.warnings],
    }


def view(project: Project, row: dict[str, Any], scenes: list[int]):
    """One asset as printed (store.AssetView), with its image state assessed for this row."""
    from . import store

    state = asset_state(project, row, style=project.locked_style_row(),
                        last_job_failed=row["id"] in failed_last(project))
    return store.view(row, scenes, state=state)


def list_views(project: Project, *, asset_type: str | None = None, conflicts_only: bool = False):
    """`review`: the assets as printed (store.AssetView), with their image states."""
    from . import store

    return store.list_views(project, asset_type=asset_type, conflicts_only=conflicts_only,
                            states=assess(project).by_id())


def asset_detail(project: Project, ref: str) -> store.AssetDetail:
    """`show` (store.AssetDetail): the asset `ref` names (id, name or alias), with its mentions,
    its jobs and its image state assessed."""
    from . import store
    from .trash import project_file

    def exists(rel: str | None) -> bool:
        path = project_file(project, rel)
        return bool(path and path.is_file())

    row = store.resolve(project, ref)
    mentions = store.mentions_of(project, row["id"])
    jobs = store.jobs_of(project, row["id"])
    base = view(project, row, sorted({m["scene_number"] for m in mentions}))
    return store.AssetDetail(
        **base.model_dump(),
        image_exists=exists(row["image_key_url"]),
        metadata=store.meta_of(row),
        mentions=[store.MentionView(scene_number=m["scene_number"], text=m["text"],
                                    context=m["context"]) for m in mentions],
        jobs=[store.JobView(
            id=j["id"], status=j["status"], backend=j["backend"], model=j["model"],
            width=j["width"], height=j["height"], seed=j["seed"], image_path=j["image_path"],
            image_exists=exists(j["image_path"]), error=j["error"], created_at=j["created_at"],
            finished_at=j["finished_at"], prompt=(loads(j["metadata"], {}) or {}).get("prompt"))
              for j in jobs],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )
