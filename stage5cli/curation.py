"""Review and curation: show, edit, add, remove, merge, describe, conflicts.

Pure functions over a Project: no Rich, no typer. Every change runs in one transaction that
also records its event (before/after snapshots and the touched asset ids), which is what
`stage5 undo` (history.py) reads. Fields a user edits become user-owned
(metadata["user_fields"]) so re-extraction keeps them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import assets as store
from .db import atomic, dumps, loads, now
from .errors import Stage5Error, UsageError
from .models import ExtractedAsset, Mention
from .project import Project

EDITABLE = ("name", "type", "description", "aliases", "is_priority")


# ---- views ---------------------------------------------------------------------------------


class MentionView(BaseModel):
    scene_number: int
    text: str
    context: str


class JobView(BaseModel):
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


class AssetDetail(store.AssetView):
    """Everything about one asset (`show --json`)."""

    image_exists: bool
    metadata: dict[str, Any]
    mentions: list[MentionView]
    jobs: list[JobView]
    created_at: str
    updated_at: str


class ConflictView(BaseModel):
    """One asset with has_conflicts (`conflicts --json`)."""

    id: int
    name: str
    type: str
    description: str
    conflict_details: str
    scenes: list[int]
    scenes_involved: list[int]
    mentions: list[MentionView]


class Reading(BaseModel):
    text: str
    scenes: list[int]


class Suggestion(BaseModel):
    """A proposed resolution of an asset's conflicts (`conflicts ASSET --suggest --json`)."""

    id: int
    name: str
    current_description: str
    conflict_details: str
    description: str
    reasoning: str
    method: str  # majority | main-scene | latest | llm | none
    attribute: str | None = None
    readings: list[Reading] = Field(default_factory=list)
    chosen: str | None = None
    model: str | None = None

    @property
    def usable(self) -> bool:
        return self.method != "none" and bool(self.description.strip())


# ---- small helpers -------------------------------------------------------------------------


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    return dict(loads(row["metadata"], {}) or {})


def _mentions(project: Project, asset_id: int) -> list[dict[str, Any]]:
    return list(project.db.query(
        "SELECT * FROM asset_mentions WHERE asset_id = ? ORDER BY scene_number, id", [asset_id]))


def _row(project: Project, asset_id: int) -> dict[str, Any]:
    return next(project.db.query("SELECT * FROM project_assets WHERE id = ?", [asset_id]))


def asset_view(project: Project, asset_id: int) -> store.AssetView:
    scenes = sorted({m["scene_number"] for m in _mentions(project, asset_id)})
    return store.view(_row(project, asset_id), scenes)


def _own(meta: dict[str, Any], fields: Iterable[str]) -> None:
    owned = list(meta.get("user_fields", []))
    for f in fields:
        if f not in owned:
            owned.append(f)
    meta["user_fields"] = owned


def _update(project: Project, asset_id: int, **cols: Any) -> None:
    cols["updated_at"] = now()
    if "metadata" in cols and not isinstance(cols["metadata"], str):
        cols["metadata"] = dumps(cols["metadata"])
    sets = ", ".join(f"{k} = ?" for k in cols)
    project.db.execute(f"UPDATE project_assets SET {sets} WHERE id = ?", [*cols.values(), asset_id])


def _record(project: Project, command: str, summary: str, before: dict, touched: list[int],
            **extra: Any) -> int:
    """Write the event of a change (call inside its transaction, after the change)."""
    after = store.snapshot(project, touched)
    return project.record_event(command, {
        "summary": summary, "before": before, "touched": touched, "after": after, **extra})


def _check_alias(alias: str) -> str:
    alias = " ".join(alias.split())
    if not alias:
        raise UsageError("an alias cannot be empty")
    if len(alias) > store.MAX_NAME:
        raise UsageError(f"an alias is at most {store.MAX_NAME} characters")
    return alias


def _owner(project: Project, name: str, asset_type: str | None,
           exclude: Iterable[int] = ()) -> dict[str, Any] | None:
    """Another asset on this branch that already answers to `name` (name or alias)."""
    from .extract.merge import norm_name

    low = name.lower()
    key = norm_name(name)
    skip = set(exclude)
    for r in store.rows(project):
        if r["id"] in skip:
            continue
        aliases = _meta(r).get("aliases", [])
        if low == r["name"].lower() or low in (a.lower() for a in aliases):
            return r
        if asset_type == r["asset_type"] and key and key in {
                norm_name(x) for x in [r["name"], *aliases]}:
            return r
    return None


def _dedupe(names: Iterable[str], drop: Iterable[str] = ()) -> list[str]:
    seen = {d.lower() for d in drop}
    out = []
    for n in names:
        if n and n.lower() not in seen:
            seen.add(n.lower())
            out.append(n)
    return out


# ---- show ----------------------------------------------------------------------------------


def _exists(project: Project, rel: str | None) -> bool:
    path = project_file(project, rel)
    return bool(path and path.is_file())


def show(project: Project, ref: str) -> AssetDetail:
    row = store.resolve(project, ref)
    mentions = _mentions(project, row["id"])
    jobs = project.db.query(
        "SELECT * FROM image_generation_jobs WHERE asset_id = ? ORDER BY id", [row["id"]])
    base = store.view(row, sorted({m["scene_number"] for m in mentions}))
    return AssetDetail(
        **base.model_dump(),
        image_exists=_exists(project, row["image_key_url"]),
        metadata=_meta(row),
        mentions=[MentionView(scene_number=m["scene_number"], text=m["text"], context=m["context"])
                  for m in mentions],
        jobs=[JobView(id=j["id"], status=j["status"], backend=j["backend"], model=j["model"],
                      width=j["width"], height=j["height"], seed=j["seed"],
                      image_path=j["image_path"], image_exists=_exists(project, j["image_path"]),
                      error=j["error"], created_at=j["created_at"], finished_at=j["finished_at"])
              for j in jobs],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


# ---- edit ----------------------------------------------------------------------------------


class EditDoc(BaseModel):
    """The YAML view `edit` opens in $EDITOR."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    description: str | None = ""
    aliases: list[str] | None = Field(default_factory=list)
    is_priority: bool = False


def edit_yaml(project: Project, ref: str) -> str:
    """The YAML text `edit` shows in the editor."""
    import yaml

    row = store.resolve(project, ref)
    meta = _meta(row)
    doc = {"name": row["name"], "type": row["asset_type"],
           "description": row["description"] or "", "aliases": list(meta.get("aliases", [])),
           "is_priority": bool(meta.get("is_priority"))}
    head = (f"# stage5: editing asset {row['id']} ({row['name']}). Save and close to apply;\n"
            "# lines starting with # are ignored; types: character, prop, location.\n"
            "# Renaming keeps the old name as an alias.\n")
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=88)


def parse_edit(text: str) -> dict[str, Any]:
    """Validate an edited YAML view; returns the field values (UsageError on anything wrong)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise UsageError(f"the edited file is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UsageError("the edited file must be a mapping with name, type, description, "
                         "aliases, is_priority")
    try:
        doc = EditDoc.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "file"
        raise UsageError(f"{field}: {err['msg']}") from None
    return {"name": store.check_name(doc.name), "asset_type": store.check_type(doc.type),
            "description": store.check_description(doc.description or ""),
            "aliases": [_check_alias(a) for a in (doc.aliases or [])],
            "is_priority": doc.is_priority}


def edit(project: Project, ref: str, *, name: str | None = None,
         description: str | None = None, asset_type: str | None = None,
         add_aliases: Iterable[str] = (), remove_aliases: Iterable[str] = (),
         aliases: list[str] | None = None, is_priority: bool | None = None,
         ) -> tuple[store.AssetView, list[str]]:
    """Change fields of one asset; returns (the asset now, the fields changed).

    `aliases` replaces the whole list (the $EDITOR path); `add_aliases`/`remove_aliases`
    change it. Renaming keeps the old name as an alias so re-extraction still matches it.
    """
    add_aliases = [_check_alias(a) for a in add_aliases]
    remove_aliases = [" ".join(a.split()) for a in remove_aliases]
    with atomic(project.db):
        project.require_draft("edit assets")
        row = store.resolve(project, ref)
        store.require_unlocked(row, "edit")
        meta = _meta(row)
        old_aliases = list(meta.get("aliases", []))
        new = {"name": row["name"], "type": row["asset_type"],
               "description": row["description"] or "", "aliases": list(old_aliases),
               "is_priority": bool(meta.get("is_priority"))}
        if name is not None:
            new["name"] = store.check_name(name)
        if asset_type is not None:
            new["type"] = store.check_type(asset_type)
        if description is not None:
            new["description"] = store.check_description(description)
        if is_priority is not None:
            new["is_priority"] = bool(is_priority)
        explicit_aliases = aliases is not None or bool(add_aliases) or bool(remove_aliases)
        if aliases is not None:
            new["aliases"] = [_check_alias(a) for a in aliases]
        for a in remove_aliases:
            if a.lower() not in (x.lower() for x in new["aliases"]):
                have = ", ".join(new["aliases"]) or "none"
                raise UsageError(f"{a!r} is not an alias of {row['name']} (aliases: {have})")
            new["aliases"] = [x for x in new["aliases"] if x.lower() != a.lower()]
        new["aliases"] = _dedupe([*new["aliases"], *add_aliases])
        renamed = new["name"] != row["name"]
        if renamed or new["type"] != row["asset_type"]:
            other = _owner(project, new["name"], new["type"], exclude=[row["id"]])
            if other is not None:
                raise UsageError(f"{new['name']!r} already names asset {other['name']} "
                                 f"(id {other['id']}); to combine them run stage5 merge")
            removed = {a.lower() for a in remove_aliases}
            if renamed and row["name"].lower() != new["name"].lower() \
                    and row["name"].lower() not in removed:
                new["aliases"] = _dedupe([*new["aliases"], row["name"]])
        new["aliases"] = _dedupe(new["aliases"], drop=[new["name"]])
        for a in new["aliases"]:
            if a.lower() in (x.lower() for x in old_aliases) or a.lower() == row["name"].lower():
                continue
            other = _owner(project, a, new["type"], exclude=[row["id"]])
            if other is not None:
                raise UsageError(f"alias {a!r} already names asset {other['name']} (id "
                                 f"{other['id']}); to combine them run stage5 merge "
                                 f"{_q(row['name'])} {_q(other['name'])}")
        changed = [f for f in EDITABLE if new[f] != {
            "name": row["name"], "type": row["asset_type"],
            "description": row["description"] or "", "aliases": old_aliases,
            "is_priority": bool(meta.get("is_priority"))}[f]]
        if not changed:
            return asset_view(project, row["id"]), []
        before = store.snapshot(project, [row["id"]])
        meta["aliases"] = new["aliases"]
        meta["is_priority"] = new["is_priority"]
        owned = [f for f in changed if f != "aliases" or explicit_aliases]
        _own(meta, owned)
        _update(project, row["id"], name=new["name"], asset_type=new["type"],
                description=new["description"], metadata=meta)
        _record(project, "edit", f"edit {row['name']}: {', '.join(changed)}", before,
                [row["id"]], fields=changed)
    return asset_view(project, row["id"]), changed


def _q(name: str) -> str:
    import shlex

    return shlex.quote(name)


# ---- add -----------------------------------------------------------------------------------


def add(project: Project, name: str, asset_type: str, *, description: str = "",
        aliases: Iterable[str] = (), is_priority: bool = False) -> store.AssetView:
    """A manual asset (origin "manual"); a name or alias already in use is refused."""
    name = store.check_name(name)
    asset_type = store.check_type(asset_type)
    description = store.check_description(description or "")
    alias_list = _dedupe([_check_alias(a) for a in aliases], drop=[name])
    with atomic(project.db):
        project.require_draft("add assets")
        for n in [name, *alias_list]:
            other = _owner(project, n, asset_type)
            if other is not None:
                what = "an asset" if n == name else "alias"
                raise UsageError(f"{what} {n!r} already exists: asset {other['name']} "
                                 f"(id {other['id']}, {other['asset_type']})")
        owned = ["name", "type"] + (["description"] if description else []) + (
            ["aliases"] if alias_list else []) + (["is_priority"] if is_priority else [])
        meta = {"aliases": alias_list, "confidence_score": None, "is_priority": bool(is_priority),
                "has_conflicts": False, "conflict_details": "", "source_mentions": [],
                "extractor": None, "model": None, "user_fields": owned}
        aid = store.insert_asset(project, name=name, asset_type=asset_type,
                                 description=description, metadata=meta, origin="manual")
        _record(project, "add", f"add {asset_type} {name}", store.snapshot(project, []), [aid])
    return asset_view(project, aid)


# ---- remove (with image files moved to the trash) --------------------------------------------


def project_file(project: Project, rel: str | None) -> Path | None:
    """The file a stored image path points at, only when it lies inside the project folder."""
    if not rel or "://" in rel:
        return None
    path = Path(rel)
    path = path if path.is_absolute() else project.root / path
    try:
        path.resolve().relative_to(project.root.resolve())
    except ValueError:
        return None
    return path


def _rel(project: Project, path: Path) -> str:
    return path.resolve().relative_to(project.root.resolve()).as_posix()


def image_files(project: Project, ids: list[int]) -> list[Path]:
    """The image files on disk that belong to these assets (image keys and job outputs)."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    refs = [r[0] for r in project.db.execute(
        f"SELECT image_key_url FROM project_assets WHERE id IN ({marks})", ids)]
    refs += [r[0] for r in project.db.execute(
        f"SELECT image_path FROM image_generation_jobs WHERE asset_id IN ({marks})", ids)]
    out: dict[str, Path] = {}
    for ref in refs:
        path = project_file(project, ref)
        if path is not None and path.is_file() and project.trash_dir.resolve() not in \
                path.resolve().parents:
            out.setdefault(str(path.resolve()), path)
    return list(out.values())


def still_referenced(project: Project, path: Path) -> bool:
    """Does any row (any branch) still point at this file?"""
    target = path.resolve()
    for (ref,) in project.db.execute(
            "SELECT image_key_url FROM project_assets WHERE image_key_url IS NOT NULL "
            "UNION SELECT image_path FROM image_generation_jobs WHERE image_path IS NOT NULL"):
        p = project_file(project, ref)
        if p is not None and p.resolve() == target:
            return True
    return False


def trash_name(project: Project, path: Path) -> Path:
    project.trash_dir.mkdir(parents=True, exist_ok=True)
    while True:
        dest = project.trash_dir / f"{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}"
        if not dest.exists():
            return dest


def move_files(moves: list[tuple[Path, Path]]) -> None:
    """os.replace each (src, dst); on any failure put back what was moved and re-raise."""
    done: list[tuple[Path, Path]] = []
    try:
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            done.append((src, dst))
    except OSError as e:
        for src, dst in reversed(done):
            try:
                os.replace(dst, src)
            except OSError:
                pass
        raise Stage5Error(f"cannot move {e.filename}: {e.strerror or e}") from None


def undo_moves(moves: list[tuple[Path, Path]]) -> None:
    for src, dst in reversed(moves):
        try:
            os.replace(dst, src)
        except OSError:
            pass


def remove(project: Project, refs: list[str]) -> tuple[list[str], list[str]]:
    """Delete assets (mentions and jobs cascade) and move their image files to the trash.

    Returns (names removed, image files trashed, relative to the project folder).
    """
    if not refs:
        raise UsageError("name at least one asset to remove")
    moves: list[tuple[Path, Path]] = []
    try:
        with atomic(project.db):
            project.require_draft("remove assets")
            found: dict[int, dict] = {}
            for ref in refs:
                row = store.resolve(project, ref)
                found.setdefault(row["id"], row)
            for row in found.values():
                store.require_unlocked(row, "remove")
            ids = list(found)
            before = store.snapshot(project, ids)
            files = image_files(project, ids)
            marks = ",".join("?" * len(ids))
            project.db.execute(f"DELETE FROM project_assets WHERE id IN ({marks})", ids)
            # a file another branch's copy still points at stays where it is
            moves = [(f, trash_name(project, f)) for f in files
                     if not still_referenced(project, f)]
            names = [r["name"] for r in found.values()]
            trashed = [{"from": _rel(project, s), "to": _rel(project, d)} for s, d in moves]
            _record(project, "remove", f"remove {', '.join(names)}", before, ids, trashed=trashed)
            move_files(moves)
    except BaseException:
        if moves and all(d.exists() for _, d in moves):
            undo_moves(moves)
        raise
    return names, [t["from"] for t in trashed]


# ---- merge ---------------------------------------------------------------------------------


def merge_plan(project: Project, target: str, sources: list[str], *,
               description_from: str | None = None, force: bool = False
               ) -> tuple[dict, list[dict], dict | None]:
    """Resolve and check a merge without changing anything: (target, sources, description row)."""
    if not sources:
        raise UsageError("name at least one SOURCE asset to merge into the target")
    t = store.resolve(project, target)
    srcs: dict[int, dict] = {}
    for ref in sources:
        row = store.resolve(project, ref)
        if row["id"] == t["id"]:
            raise UsageError(f"cannot merge {t['name']} into itself")
        srcs.setdefault(row["id"], row)
    for row in [t, *srcs.values()]:
        store.require_unlocked(row, "merge")
    for row in srcs.values():
        if row["asset_type"] != t["asset_type"] and not force:
            raise UsageError(f"{row['name']} is a {row['asset_type']} and {t['name']} a "
                             f"{t['asset_type']}: add --force to merge different types")
    desc_row = None
    if description_from:
        desc_row = store.resolve(project, description_from)
        if desc_row["id"] != t["id"] and desc_row["id"] not in srcs:
            raise UsageError(f"--description-from must name the target or one of the sources, "
                             f"not {desc_row['name']}")
    return t, list(srcs.values()), desc_row


def merge(project: Project, target: str, sources: list[str], *,
          description_from: str | None = None, force: bool = False) -> store.AssetView:
    """Fold SOURCE assets into TARGET in one transaction; the sources are removed.

    Aliases (with the sources' names), mentions (deduplicated) and scenes are unioned, image
    jobs move to the target, conflicts are recombined, metadata["merged_from"] records the
    source names (which become aliases, so re-extraction finds the target, not new assets).
    """
    with atomic(project.db):
        project.require_draft("merge assets")
        t, srcs, desc_row = merge_plan(project, target, sources,
                                       description_from=description_from, force=force)
        ids = [t["id"], *(s["id"] for s in srcs)]
        before = store.snapshot(project, ids)
        meta = _meta(t)
        metas = [(s, _meta(s)) for s in srcs]
        aliases = list(meta.get("aliases", []))
        for s, m in metas:
            aliases += [s["name"], *m.get("aliases", [])]
        meta["aliases"] = _dedupe(aliases, drop=[t["name"]])
        all_meta = [meta, *(m for _, m in metas)]
        meta["is_priority"] = any(bool(m.get("is_priority")) for m in all_meta)
        scores = [m.get("confidence_score") for m in all_meta if m.get("confidence_score") is not None]
        meta["confidence_score"] = max(scores) if scores else None
        details = []
        if meta.get("has_conflicts") and meta.get("conflict_details"):
            details.append(meta["conflict_details"])
        for s, m in metas:
            if m.get("has_conflicts") and m.get("conflict_details"):
                details.append(f"{s['name']}: {m['conflict_details']}")
        meta["has_conflicts"] = any(bool(m.get("has_conflicts")) for m in all_meta)
        meta["conflict_details"] = "; ".join(dict.fromkeys(details))
        quotes, seen_q = [], set()
        for m in all_meta:
            for q in m.get("source_mentions", []):
                key = (q.get("scene_number"), q.get("text"), q.get("context"))
                if key not in seen_q:
                    seen_q.add(key)
                    quotes.append(q)
        meta["source_mentions"] = sorted(quotes, key=lambda q: q.get("scene_number") or 0)[
            :store.CONTEXT_QUOTES * (1 + len(srcs))]
        meta["merged_from"] = _dedupe([*meta.get("merged_from", []),
                                       *(n for s, m in metas for n in
                                         [s["name"], *m.get("merged_from", [])])])
        owned = [f for _, m in metas for f in m.get("user_fields", [])]
        description = t["description"] or ""
        if desc_row is not None and desc_row["id"] != t["id"]:
            description = desc_row["description"] or ""
            owned.append("description")
        _own(meta, [f for f in owned if f in ("description", "is_priority", "aliases")])
        have = {(m["scene_number"], m["text"], m["context"]) for m in _mentions(project, t["id"])}
        for s in srcs:
            for m in _mentions(project, s["id"]):
                key = (m["scene_number"], m["text"], m["context"])
                if key not in have:
                    have.add(key)
                    project.db.execute("UPDATE asset_mentions SET asset_id = ? WHERE id = ?",
                                       [t["id"], m["id"]])
        src_ids = [s["id"] for s in srcs]
        marks = ",".join("?" * len(src_ids))
        project.db.execute(
            f"UPDATE image_generation_jobs SET asset_id = ? WHERE asset_id IN ({marks})",
            [t["id"], *src_ids])
        project.db.execute(f"DELETE FROM project_assets WHERE id IN ({marks})", src_ids)
        _update(project, t["id"], description=description, metadata=meta,
                stale=0 if any(not s["stale"] for s in srcs) else t["stale"])
        names = [s["name"] for s in srcs]
        _record(project, "merge", f"merge {', '.join(names)} into {t['name']}", before, ids,
                target=t["id"], sources=names)
    return asset_view(project, t["id"])


# ---- describe ------------------------------------------------------------------------------


def as_extracted(project: Project, row: dict[str, Any]) -> ExtractedAsset:
    meta = _meta(row)
    return ExtractedAsset(
        name=row["name"], type=row["asset_type"], aliases=list(meta.get("aliases", [])),
        mentions=[Mention(scene_number=m["scene_number"], text=m["text"], context=m["context"])
                  for m in _mentions(project, row["id"])],
        description=row["description"] or "",
        confidence_score=float(meta.get("confidence_score") or 0.0),
        is_priority=bool(meta.get("is_priority")), has_conflicts=bool(meta.get("has_conflicts")),
        conflict_details=meta.get("conflict_details") or "",
    )


def load_script(project: Project, asset: ExtractedAsset):
    """The project's script as parsed, or a stand-in built from the stored mention contexts."""
    from .screenplay.model import Element, Scene, Screenplay

    path = project.stage()["script_path"]
    if path:
        for candidate in (Path(path), project.root / path):
            if candidate.is_file():
                try:
                    from .screenplay import load

                    return load(candidate)
                except Exception:  # noqa: BLE001 - a changed/broken script: use the contexts
                    break
    scenes, elements = [], []
    by_scene: dict[int, list[str]] = {}
    for m in asset.mentions:
        by_scene.setdefault(m.scene_number, [])
        text = m.context or m.text
        if text and text not in by_scene[m.scene_number]:
            by_scene[m.scene_number].append(text)
    for n in sorted(by_scene):
        start = len(elements)
        elements.append(Element(type="scene_heading", text=f"SCENE {n}", scene=n))
        elements += [Element(type="action", text=t, scene=n) for t in by_scene[n]]
        scenes.append(Scene(number=n, heading=f"SCENE {n}", element_range=(start, len(elements))))
    return Screenplay(scenes=scenes, elements=elements)


def model_for(model: str | None) -> str | None:
    """--model, else $STAGE5_MODEL, else None (the built-in, offline path)."""
    from .extraction import resolve_model

    return resolve_model(model)


def _settings(model: str, api_base: str | None):
    from .extract.llm import LLMSettings

    return LLMSettings(model=model, api_base=api_base)


def _distill(project: Project, asset: ExtractedAsset, *, model: str | None, api_base: str | None,
             instructions: str | None, style_name: str) -> tuple[str, Any]:
    if model is None:
        if instructions:
            raise UsageError("--instructions needs an LLM: add --model M (or set $STAGE5_MODEL)")
        from .extract.builtin import distill_builtin

        return "builtin", distill_builtin(asset, load_script(project, asset), style_name=style_name)
    from .extract.llm import distill
    from .extract.llmcall import run

    return "llm", run(distill(asset, project.db, _settings(model, api_base),
                              style_name=style_name, instructions=instructions or None))


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def describe(project: Project, ref: str, *, model: str | None = None, api_base: str | None = None,
             instructions: str | None = None) -> tuple[str, store.AssetView, bool]:
    """Regenerate one description (pass 2 for one asset).

    Returns (old description, the asset now, whether it changed); an unchanged description
    records nothing.

    Offline (no model and no $STAGE5_MODEL) it runs the built-in pass 2; with a model, the
    litellm pass 2 with its cache. The old description stays in the event's before snapshot.
    """
    model = model_for(model)
    project.require_draft("describe assets")
    _, capsule = project.require_style()
    row = store.resolve(project, ref)
    store.require_unlocked(row, "describe")
    asset = as_extracted(project, row)
    extractor, result = _distill(project, asset, model=model, api_base=api_base,
                                 instructions=instructions, style_name=capsule.name)
    text = _field(result, "description", default=None)
    if text is None and isinstance(result, str):
        text = result
    text = store.check_description(str(text or ""))
    if not text:
        raise Stage5Error(f"the {'model' if model else 'built-in extractor'} returned an empty "
                          f"description for {row['name']}; nothing changed")
    with atomic(project.db):
        project.require_draft("describe assets")
        row = store.resolve(project, str(row["id"]))
        store.require_unlocked(row, "describe")
        old = row["description"] or ""
        if text == old:
            return old, asset_view(project, row["id"]), False
        before = store.snapshot(project, [row["id"]])
        meta = _meta(row)
        meta["described_by"] = {"extractor": extractor, "model": model,
                                "instructions": instructions or "", "at": now()}
        _own(meta, ["description"])
        _update(project, row["id"], description=text, metadata=meta)
        _record(project, "describe", f"describe {row['name']} ({model or 'built-in'})", before,
                [row["id"]], model=model)
    return old, asset_view(project, row["id"]), True


# ---- conflicts -----------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SCENES = re.compile(r"\b(?:scenes?|sc\.?)\s*#?(\d+(?:\s*(?:,|and|&|-)\s*#?\d+)*)", re.I)
_SPLIT = re.compile(r"\s*(?:;|\bvs\.?\b|\bversus\b|\bbut\b|\bwhile\b|\bwhereas\b|\band\b|\bor\b"
                    r"|\bthen\b|\blater\b|/|,)\s*", re.I)
VALUES = frozenset("""
black white red blue green yellow orange purple pink brown grey gray silver gold golden blonde
blond auburn ginger brunette dark light pale tan tanned beige navy crimson scarlet maroon teal
turquoise violet ivory cream khaki olive bronze copper rusty striped checked plaid spotted
bald long short curly straight wavy braided shaved bearded tall fat thin slim skinny stocky
young old elderly teenage middle-aged leather wooden metal steel iron glass stone brick velvet
silk denim wool woolen cotton plastic paper new broken clean dirty torn shiny battered
""".split())
STOP = frozenset("""
a an the is are was were be been being in on at of to for with by from as it its his her their
he she they him them this that these those has have had not no than then also there here who
which what when where while one two some any each both either neither very more most less
described appears appear seems seem looks look shown shows wears wearing wore worn sometimes
scene scenes sc mentioned mention mentions says said script elsewhere other another same
different contradict contradicts contradictory conflict conflicts conflicting vs versus but and or
""".split())


def _words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower())


def _scene_numbers(text: str) -> set[int]:
    out: set[int] = set()
    for m in _SCENES.finditer(text or ""):
        out.update(int(n) for n in re.findall(r"\d+", m.group(1)))
    return out


def _near(words: list[str], value: list[str], noun: str | None, window: int = 5) -> bool:
    n = len(value)
    for i in range(len(words) - n + 1):
        if words[i:i + n] == value:
            if noun is None:
                return True
            lo, hi = max(0, i - window), min(len(words), i + n + window)
            if noun in words[lo:hi]:
                return True
    return False


def find_readings(details: str, mentions: list[dict], name: str
                  ) -> tuple[str | None, list[Reading]]:
    """The conflicting attribute and its readings, each with the scenes that support it."""
    name_words = set(_words(name))
    parts = [p for p in _SPLIT.split(details or "") if p.strip()]
    det_words = _words(details)
    values = list(dict.fromkeys(w for w in det_words if w in VALUES))
    readings: list[list[str]] = []
    if len(values) >= 2:
        readings = [[v] for v in values]
    elif len(parts) >= 2:
        sets = [[w for w in _words(p) if w not in STOP and w not in name_words] for p in parts]
        common = set.intersection(*(set(s) for s in sets)) if sets else set()
        distinct = [[w for w in s if w not in common] for s in sets]
        if all(distinct):
            readings = [d[:3] for d in distinct]
    nouns = Counter(w for w in det_words if w not in STOP and w not in VALUES
                    and w not in name_words and not any(w in r for r in readings))
    noun = None
    if readings:
        scored = []
        for cand, n in nouns.items():
            hits = sum(_near(_words(m["context"]), r, cand) for m in mentions for r in readings)
            scored.append((hits, n, cand))
        if scored and max(scored)[0] > 0:
            noun = max(scored)[2]
    if not readings:  # nothing usable in the details: look for one noun with two values
        pairs: dict[str, dict[str, set[int]]] = {}
        for m in mentions:
            w = _words(m["context"])
            for i in range(len(w) - 1):
                if w[i] in VALUES and w[i + 1] not in STOP and w[i + 1] not in VALUES \
                        and w[i + 1] not in name_words:
                    pairs.setdefault(w[i + 1], {}).setdefault(w[i], set()).add(m["scene_number"])
        rich = [(len(v), k) for k, v in pairs.items() if len(v) >= 2]
        if not rich:
            return None, []
        noun = max(rich)[1]
        return noun, [Reading(text=v, scenes=sorted(s)) for v, s in pairs[noun].items()]
    out = []
    for r in readings:
        scenes = {m["scene_number"] for m in mentions if _near(_words(m["context"]), r, noun)}
        for p in parts:
            if _near(_words(p), r, None):
                scenes |= _scene_numbers(p)
        out.append(Reading(text=" ".join(r), scenes=sorted(scenes)))
    return noun, out


def _involved(details: str, mentions: list[dict], name: str) -> list[int]:
    _, readings = find_readings(details, mentions, name)
    scenes = {s for r in readings for s in r.scenes} | _scene_numbers(details)
    known = {m["scene_number"] for m in mentions}
    found = sorted(s for s in scenes if s in known or not known)
    return found or sorted(known)


def list_conflicts(project: Project) -> list[ConflictView]:
    out = []
    for r in store.rows(project):
        meta = _meta(r)
        if not meta.get("has_conflicts"):
            continue
        mentions = _mentions(project, r["id"])
        details = meta.get("conflict_details") or ""
        involved = _involved(details, mentions, r["name"])
        out.append(ConflictView(
            id=r["id"], name=r["name"], type=r["asset_type"], description=r["description"] or "",
            conflict_details=details, scenes=sorted({m["scene_number"] for m in mentions}),
            scenes_involved=involved,
            mentions=[MentionView(scene_number=m["scene_number"], text=m["text"],
                                  context=m["context"])
                      for m in mentions if m["scene_number"] in involved]))
    return out


def _conflicted(project: Project, ref: str) -> dict[str, Any]:
    row = store.resolve(project, ref)
    if not _meta(row).get("has_conflicts"):
        raise UsageError(f"{row['name']} has no recorded conflicts; to change its description "
                         f"run stage5 edit {_q(row['name'])} --description TEXT")
    return row


def _replace_reading(description: str, losers: list[str], winner: str) -> str:
    text = description
    for lose in losers:
        text = re.sub(rf"\b{re.escape(lose)}\b", lambda m: _case_like(m.group(0), winner), text,
                      flags=re.I)
    return text


def _case_like(sample: str, word: str) -> str:
    if sample.isupper():
        return word.upper()
    if sample[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def offline_suggestion(project: Project, row: dict[str, Any]) -> Suggestion:
    """The rule: majority reading; on a tie the main scene's; then the latest scene's."""
    meta = _meta(row)
    details = meta.get("conflict_details") or ""
    mentions = _mentions(project, row["id"])
    noun, readings = find_readings(details, mentions, row["name"])
    base = {"id": row["id"], "name": row["name"], "current_description": row["description"] or "",
            "conflict_details": details, "attribute": noun, "readings": readings}
    supported = [r for r in readings if r.scenes]
    if len(supported) < 2 and len(readings) < 2:
        return Suggestion(**base, description=row["description"] or "", method="none",
                          reasoning="could not find the conflicting readings in the details or "
                                    "the mentions; resolve by hand with --resolve TEXT")
    pool = supported or readings
    counts = {r.text: len(r.scenes) for r in pool}
    top = max(counts.values())
    leaders = [r for r in pool if counts[r.text] == top]
    what = f"{noun} " if noun else ""
    tally = "; ".join(f"{r.text}: {len(r.scenes)} scene(s)"
                      + (f" ({', '.join(map(str, r.scenes))})" if r.scenes else "")
                      for r in readings)
    if len(leaders) == 1:
        chosen, method = leaders[0], "majority"
        why = f"the {what}is {chosen.text} in most scenes ({tally})"
    else:
        per_scene = Counter(m["scene_number"] for m in mentions)
        main = {r.text: max((per_scene.get(s, 0) for s in r.scenes), default=0) for r in leaders}
        best = max(main.values())
        by_main = [r for r in leaders if main[r.text] == best]
        if len(by_main) == 1 and best > 0:
            chosen, method = by_main[0], "main-scene"
            scene = max(chosen.scenes, key=lambda s: (per_scene.get(s, 0), -s))
            why = (f"tie ({tally}); {chosen.text} is the reading of scene {scene}, where "
                   f"{row['name']} appears most ({best} mentions)")
        else:
            chosen = max(leaders, key=lambda r: (max(r.scenes, default=-1), r.text))
            method = "latest"
            last = max(chosen.scenes) if chosen.scenes else None
            why = f"tie ({tally}); {chosen.text} is the latest reading" + (
                f" (scene {last})" if last is not None else "")
    losers = [r.text for r in readings if r.text != chosen.text]
    desc = _replace_reading(row["description"] or "", losers, chosen.text)
    if not re.search(rf"\b{re.escape(chosen.text)}\b", desc, re.I):
        extra = f"{noun[:1].upper() + noun[1:]}: {chosen.text}." if noun else \
            f"Consistently {chosen.text}."
        desc = f"{desc.rstrip()} {extra}".strip()
    return Suggestion(**base, description=store.check_description(desc), method=method,
                      chosen=chosen.text, reasoning=why)


def llm_suggestion(project: Project, row: dict[str, Any], *, model: str,
                   api_base: str | None = None) -> Suggestion:
    """One cached JSON call through litellm with prompts/conflict.txt."""
    from .extract.llm import suggest_conflict_fix
    from .extract.llmcall import run

    _, capsule = project.require_style()
    meta = _meta(row)
    data = run(suggest_conflict_fix(as_extracted(project, row), project.db,
                                    _settings(model, api_base), style_name=capsule.name))
    desc = store.check_description(str(_field(data, "description", default="") or ""))
    return Suggestion(id=row["id"], name=row["name"], current_description=row["description"] or "",
                      conflict_details=meta.get("conflict_details") or "", description=desc,
                      reasoning=str(_field(data, "reasoning", default="") or ""),
                      method="llm" if desc else "none", model=model)


def suggest(project: Project, ref: str, *, model: str | None = None,
            api_base: str | None = None) -> Suggestion:
    row = _conflicted(project, ref)
    model = model_for(model)
    if model:
        return llm_suggestion(project, row, model=model, api_base=api_base)
    return offline_suggestion(project, row)


def _settle(project: Project, ref: str, command: str, description: str,
            resolution: dict[str, Any]) -> store.AssetView:
    description = store.check_description(description)
    if not description:
        raise UsageError("a resolution needs a non-empty description")
    with atomic(project.db):
        project.require_draft("resolve conflicts")
        row = _conflicted(project, ref)
        store.require_unlocked(row, "resolve conflicts on")
        before = store.snapshot(project, [row["id"]])
        meta = _meta(row)
        meta["conflict_resolution"] = {**resolution, "details": meta.get("conflict_details", ""),
                                       "previous_description": row["description"] or "",
                                       "at": now()}
        meta["has_conflicts"] = False
        meta["conflict_details"] = ""
        _own(meta, ["description"])
        _update(project, row["id"], description=description, metadata=meta)
        _record(project, command, f"{command} {row['name']}", before, [row["id"]])
    return asset_view(project, row["id"])


def apply_suggestion(project: Project, ref: str, *, model: str | None = None,
                     api_base: str | None = None) -> tuple[Suggestion, store.AssetView]:
    project.require_draft("resolve conflicts")
    row = _conflicted(project, ref)
    store.require_unlocked(row, "resolve conflicts on")
    s = suggest(project, ref, model=model, api_base=api_base)
    if not s.usable:
        raise UsageError(f"no suggestion to apply for {s.name} ({s.reasoning}); "
                         f"run stage5 conflicts {_q(s.name)} --resolve TEXT")
    view = _settle(project, ref, "conflicts apply", s.description,
                   {"by": "suggestion", "method": s.method, "model": s.model, "chosen": s.chosen,
                    "reasoning": s.reasoning})
    return s, view


def resolve_conflict(project: Project, ref: str, text: str) -> store.AssetView:
    return _settle(project, ref, "conflicts resolve", text, {"by": "user"})


def require_editable(project: Project, ref: str, action: str) -> dict[str, Any]:
    """Resolve and check an asset for a change (stage draft, asset unlocked)."""
    project.require_draft(f"{action} assets")
    row = store.resolve(project, ref)
    store.require_unlocked(row, action)
    return row

