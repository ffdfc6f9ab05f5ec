"""Review and curation: show, edit, add, remove, merge, describe (conflicts: conflicts.py).

Pure functions over a Project: no Rich, no typer. Every change runs in one transaction that
also records its event (before/after snapshots and the touched asset ids), which is what
`stage5 undo` (history.py) reads. Fields a user edits become user-owned
(metadata["user_fields"]) so re-extraction keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import store
from .db import atomic, now
from .errors import Stage5Error, UsageError
from .history import record
from .models import ExtractedAsset
from .project import Project
from .store import (
    as_extracted,
    asset_view,
    mentions_of,
    meta_of,
    own_fields,
    quoted,
    update_asset,
)
from .trash import (
    image_files,
    move_files,
    relative,
    still_referenced,
    trash_name,
    undo_moves,
)

EDITABLE = ("name", "type", "description", "aliases", "is_priority")


# ---- views ---------------------------------------------------------------------------------


# The views of `show` live in store.read (plain dataclasses: `show` never imports pydantic).
JobView = store.JobView
AssetDetail = store.AssetDetail


# ---- small helpers -------------------------------------------------------------------------


def _dedupe(names: Iterable[str], drop: Iterable[str] = ()) -> list[str]:
    seen = {d.lower() for d in drop}
    out = []
    for n in names:
        if n and n.lower() not in seen:
            seen.add(n.lower())
            out.append(n)
    return out


# ---- show ----------------------------------------------------------------------------------


def show(project: Project, ref: str) -> AssetDetail:
    """Everything about one asset (readiness.asset_detail)."""
    from .readiness import asset_detail

    return asset_detail(project, ref)


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
    meta = meta_of(row)
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
            "aliases": [store.check_alias(a) for a in (doc.aliases or [])],
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
    add_aliases = [store.check_alias(a) for a in add_aliases]
    remove_aliases = [" ".join(a.split()) for a in remove_aliases]
    with atomic(project.db):
        project.require_draft("edit assets")
        row = store.resolve(project, ref)
        store.require_unlocked(row, "edit")
        meta = meta_of(row)
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
            new["aliases"] = [store.check_alias(a) for a in aliases]
        for a in remove_aliases:
            if a.lower() not in (x.lower() for x in new["aliases"]):
                have = ", ".join(new["aliases"]) or "none"
                raise UsageError(f"{a!r} is not an alias of {row['name']} (aliases: {have})")
            new["aliases"] = [x for x in new["aliases"] if x.lower() != a.lower()]
        new["aliases"] = _dedupe([*new["aliases"], *add_aliases])
        renamed = new["name"] != row["name"]
        if renamed or new["type"] != row["asset_type"]:
            other = store.owner(project, new["name"], new["type"], exclude=[row["id"]])
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
            other = store.owner(project, a, new["type"], exclude=[row["id"]])
            if other is not None:
                raise UsageError(f"alias {a!r} already names asset {other['name']} (id "
                                 f"{other['id']}); to combine them run stage5 merge "
                                 f"{quoted(row['name'])} {quoted(other['name'])}")
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
        own_fields(meta, owned)
        update_asset(project, row["id"], name=new["name"], asset_type=new["type"],
                description=new["description"], metadata=meta)
        record(project, "edit", f"edit {row['name']}: {', '.join(changed)}", before,
                [row["id"]], fields=changed)
    return asset_view(project, row["id"]), changed


# ---- add -----------------------------------------------------------------------------------


def add(project: Project, name: str, asset_type: str, *, description: str = "",
        aliases: Iterable[str] = (), is_priority: bool = False) -> store.AssetView:
    """A manual asset (origin "manual"); a name or alias already in use is refused."""
    name = store.check_name(name)
    asset_type = store.check_type(asset_type)
    description = store.check_description(description or "")
    alias_list = _dedupe([store.check_alias(a) for a in aliases], drop=[name])
    with atomic(project.db):
        project.require_draft("add assets")
        for n in [name, *alias_list]:
            other = store.owner(project, n, asset_type)
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
                                 description=description, metadata=meta, origin="manual",
                                 mentions=script_mentions(project, [name, *alias_list]))
        record(project, "add", f"add {asset_type} {name}", store.snapshot(project, []), [aid])
    return asset_view(project, aid)


def script_mentions(project: Project, names: list[str], limit: int = 500) -> list[dict[str, Any]]:
    """Mentions (with context) of `names` in the extracted script: every element whose text
    names one of them as a whole word, case-insensitively. None when there is no script."""
    import re

    from .project import script_file

    file = script_file(project, project.stage()["script_path"])
    if file is None or not file.is_file():
        return []
    try:
        from .screenplay import load

        sp = load(file)
    except Exception:  # noqa: BLE001 - a changed or broken script: no mentions, not an error
        return []
    words = [n for n in dict.fromkeys(x.strip() for x in names) if n]
    if not words:
        return []
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)",
                         re.IGNORECASE)
    out: list[dict[str, Any]] = []
    for el in sp.elements:
        if el.scene is None or not el.text:
            continue
        m = pattern.search(el.text)
        if m:
            out.append({"scene_number": el.scene, "text": m.group(1),
                        "context": " ".join(el.text.split())[:300]})
            if len(out) >= limit:
                break
    return out


# ---- remove (image files go to the trash: trash.py) ----------------------------------------


def note_curation(project: Project, kind: str, row: dict[str, Any], *, target: int | None = None
                  ) -> None:
    """Record (inside the caller's transaction) that the user removed `row` or merged it into
    `target`, under its name and aliases, so re-extraction honours it (curation_records, m003)."""
    for name in [row["name"], *meta_of(row).get("aliases", [])]:
        key = store.name_key(name)
        if not key:
            continue
        project.db.execute(
            "INSERT INTO curation_records (branch_id, kind, asset_type, name_key, name, "
            "target_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
            "(branch_id, kind, asset_type, name_key) DO UPDATE SET target_id = excluded.target_id, "
            "name = excluded.name", [project.branch_id, kind, row["asset_type"], key, name, target,
                                     now()])


def restore_removed(project: Project) -> list[str]:
    """Forget this branch's removals (extract --restore-removed): the names that come back."""
    with atomic(project.db):
        names = [r[0] for r in project.db.execute(
            "SELECT name FROM curation_records WHERE branch_id = ? AND kind = 'removed' "
            "ORDER BY id", [project.branch_id])]
        project.db.execute("DELETE FROM curation_records WHERE branch_id = ? AND kind = 'removed'",
                           [project.branch_id])
    return names


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
            curation_before = store.curation_snapshot(project)
            files = image_files(project, ids)
            for row in found.values():
                note_curation(project, "removed", row)
            store.delete_assets(project, ids)
            # a file another branch's copy still points at stays where it is
            moves = [(f, trash_name(project, f)) for f in files
                     if not still_referenced(project, f)]
            names = [r["name"] for r in found.values()]
            trashed = [{"from": relative(project, s), "to": relative(project, d)} for s, d in moves]
            record(project, "remove", f"remove {', '.join(names)}", before, ids, trashed=trashed,
                   curation_before=curation_before)
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
        meta = meta_of(t)
        metas = [(s, meta_of(s)) for s in srcs]
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
        own_fields(meta, [f for f in owned if f in ("description", "is_priority", "aliases")])
        have = {(m["scene_number"], m["text"], m["context"]) for m in mentions_of(project, t["id"])}
        moved = []
        for s in srcs:
            for m in mentions_of(project, s["id"]):
                key = (m["scene_number"], m["text"], m["context"])
                if key not in have:
                    have.add(key)
                    moved.append(m["id"])
        src_ids = [s["id"] for s in srcs]
        curation_before = store.curation_snapshot(project)
        for s in srcs:
            note_curation(project, "merged", s, target=t["id"])
        store.move_mentions(project, moved, t["id"])
        store.move_jobs(project, src_ids, t["id"])
        store.delete_assets(project, src_ids)
        update_asset(project, t["id"], description=description, metadata=meta,
                stale=0 if any(not s["stale"] for s in srcs) else t["stale"])
        names = [s["name"] for s in srcs]
        record(project, "merge", f"merge {', '.join(names)} into {t['name']}", before, ids,
                target=t["id"], sources=names, curation_before=curation_before)
    return asset_view(project, t["id"])


# ---- describe ------------------------------------------------------------------------------


def load_script(project: Project, asset: ExtractedAsset):
    """The project's script as parsed, or a stand-in built from the stored mention contexts."""
    from .project import script_file
    from .screenplay.model import Element, Scene, Screenplay

    file = script_file(project, project.stage()["script_path"])
    if file is not None and file.is_file():
        try:
            from .screenplay import load

            return load(file)
        except Exception:  # noqa: BLE001 - a changed/broken script: use the contexts
            pass
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


def describe(project: Project, ref: str, *, model: str | None = None, api_base: str | None = None,
             instructions: str | None = None, api_key_env: str | None = None) -> tuple[str, store.AssetView, bool]:
    """Regenerate one description (pass 2 for one asset).

    Returns (old description, the asset now, whether it changed); an unchanged description
    records nothing.

    Offline (no model and no $STAGE5_MODEL) it runs the built-in pass 2; with a model, the
    litellm pass 2 with its cache. The old description stays in the event's before snapshot.
    """
    from .extract.registry import resolve

    extractor = resolve(model, api_base=api_base, api_key_env=api_key_env)
    model = extractor.model
    project.require_draft("describe assets")
    _, capsule = project.require_style()
    row = store.resolve(project, ref)
    store.require_unlocked(row, "describe")
    asset = as_extracted(project, row)
    result = extractor.distill(asset, db=project.db, style_name=capsule.name,
                               script=lambda: load_script(project, asset),
                               instructions=instructions)
    from .secrets import scrub

    text = store.check_description(scrub(result.description))  # a provider's words, scrubbed
    if not text:
        raise Stage5Error(f"the {extractor.noun} returned an empty "
                          f"description for {row['name']}; nothing changed")
    with atomic(project.db):
        project.require_draft("describe assets")
        row = store.resolve(project, str(row["id"]))
        store.require_unlocked(row, "describe")
        old = row["description"] or ""
        if text == old:
            return old, asset_view(project, row["id"]), False
        before = store.snapshot(project, [row["id"]])
        meta = meta_of(row)
        meta["described_by"] = {"extractor": extractor.extractor_id, "model": model,
                                "instructions": instructions or "", "at": now()}
        own_fields(meta, ["description"])
        update_asset(project, row["id"], description=text, metadata=meta)
        record(project, "describe", f"describe {row['name']} ({extractor.name})", before,
                [row["id"]], model=model)
    return old, asset_view(project, row["id"]), True


def require_editable(project: Project, ref: str, action: str) -> dict[str, Any]:
    """Resolve and check an asset for a change (stage draft, asset unlocked)."""
    project.require_draft(f"{action} assets")
    row = store.resolve(project, ref)
    store.require_unlocked(row, action)
    return row

