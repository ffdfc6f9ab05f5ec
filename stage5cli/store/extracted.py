"""Saving an extraction: one transaction that adds new assets, updates matched ones in place
(never a field the user owns, never a locked asset) and marks vanished ones stale."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from stage5cli.db import atomic, now
from stage5cli.errors import BlockedError
from stage5cli.project import Project

from .names import name_key
from .read import mentions_of, meta_of, rows
from .write import insert_assets, replace_mentions, snapshot, update_asset

if TYPE_CHECKING:
    from stage5cli.models import ExtractedAsset

T = TypeVar("T")

CONTEXT_QUOTES = 5  # context quotes kept in metadata.source_mentions
MAX_ALIASES = 50  # aliases kept per asset from one extraction (a model can answer thousands)
MAX_MENTIONS = 500  # mentions kept per asset from one extraction
# assets of one kind kept from one extraction: the most-seen ones (a feature has a few hundred of
# each; a script of nothing but distinct names, or a model answering thousands, is cut here)
MAX_ASSETS_PER_KIND = 2000
# metadata keys of the breakdown (breakdown/categories.py); `edit --category` owns all three
BREAKDOWN_KEYS = ("category", "category_info", "category_source")


def _metadata(asset: ExtractedAsset, extractor: str, model: str | None) -> dict[str, Any]:
    quotes = [{"scene_number": m.scene_number, "text": m.text, "context": m.context}
              for m in asset.mentions if m.context][:CONTEXT_QUOTES]
    return {
        "aliases": sorted(set(asset.aliases) - {asset.name}, key=str.lower)[:MAX_ALIASES],
        "confidence_score": round(float(asset.confidence_score), 3),
        "is_priority": bool(asset.is_priority),
        "has_conflicts": bool(asset.has_conflicts),
        "conflict_details": asset.conflict_details or "",
        "source_mentions": quotes,
        "extractor": extractor,
        "model": model,
        "user_fields": [],
        **{k: asset.extra[k] for k in BREAKDOWN_KEYS if k in asset.extra},
        # a vehicle heading's location and prop name each other (builtin extractor)
        **{k: asset.extra[k] for k in ("set", "vehicle") if asset.extra.get(k)},
    }


def _keys(name: str, aliases: list[str]) -> set[str]:
    return {k for k in (name_key(x) for x in [name, *aliases]) if k}


class MovedOn(BlockedError):
    """The branch or its style changed while a long-running command was working."""


def check_started_on(project: Project, started_on: tuple[int, int | None] | None,
                     action: str) -> None:
    """Refuse to save into another branch or style than the one a command started on
    (`started_on`: (branch id, locked style capsule id) read when it started). Call inside the
    saving transaction."""
    if started_on is None:
        return
    branch_id, style_id = started_on
    if project.branch_id != branch_id:
        names = dict(project.db.execute("SELECT id, name FROM branches").fetchall())
        raise MovedOn(f"the active branch changed from {names.get(branch_id, branch_id)!r} to "
                      f"{names.get(project.branch_id)!r} while {action} was running: nothing "
                      f"was saved; switch back (stage5 branch switch "
                      f"{names.get(branch_id, branch_id)}) and run it again")
    if project.stage(branch_id)["locked_visual_style_capsule_id"] != style_id:
        raise MovedOn(f"the branch's locked style changed while {action} was running: nothing "
                      "was saved; run it again")


def started_on(project: Project) -> tuple[int, int | None]:
    """What check_started_on compares against: the active branch and its locked style now."""
    bid = project.branch_id
    return bid, project.stage(bid)["locked_visual_style_capsule_id"]


def cap(assets: list[ExtractedAsset]) -> list[ExtractedAsset]:
    """At most MAX_ALIASES aliases and MAX_MENTIONS mentions per asset (in place)."""
    for a in assets:
        if len(a.aliases) > MAX_ALIASES:
            a.aliases = list(dict.fromkeys(a.aliases))[:MAX_ALIASES]
        if len(a.mentions) > MAX_MENTIONS:
            a.mentions = a.mentions[:MAX_MENTIONS]
    return assets


def keep_most_seen(items: list[T], scenes: Callable[[T], Iterable[int]],
                   limit: int | None = None) -> list[T]:
    """The `limit` (MAX_ASSETS_PER_KIND) items seen in the most scenes (then the earliest
    seen, then the first given), in their order: every item when there are not more."""
    limit = MAX_ASSETS_PER_KIND if limit is None else limit
    if len(items) <= limit:
        return items

    def rank(i: int) -> tuple[int, int, int]:
        seen = set(scenes(items[i]))
        return (-len(seen), min(seen, default=1 << 62), i)

    return [items[i] for i in sorted(sorted(range(len(items)), key=rank)[:limit])]


def most_seen(assets: list[ExtractedAsset], limit: int | None = None
              ) -> tuple[list[ExtractedAsset], dict[str, int]]:
    """At most `limit` (MAX_ASSETS_PER_KIND) assets of each kind (keep_most_seen by their
    mentions' scenes), in their order; and how many of each kind were left out."""
    limit = MAX_ASSETS_PER_KIND if limit is None else limit
    by_kind: dict[str, list[ExtractedAsset]] = {}
    for a in assets:
        by_kind.setdefault(a.type, []).append(a)
    over = {kind: len(of) - limit for kind, of in by_kind.items() if len(of) > limit}
    if not over:
        return assets, {}
    kept = {id(a) for of in by_kind.values()
            for a in keep_most_seen(of, lambda a: (m.scene_number for m in a.mentions), limit)}
    return [a for a in assets if id(a) in kept], over


def scrubbed(assets: list[ExtractedAsset], *, from_provider: bool = True
             ) -> list[ExtractedAsset]:
    """Every text a provider gave (names, aliases, descriptions, conflict text, mentions)
    through secrets.scrub before it is stored or printed; names that are a bare number (which
    would read as an asset id) are dropped."""
    from stage5cli.secrets import scrub

    from .names import is_id_like

    out = []
    for a in assets:
        if not from_provider:  # the built-in extractor: only the script's own words
            if not is_id_like(a.name):
                out.append(a)
            continue
        name = scrub(a.name)
        if is_id_like(name):
            continue
        mentions = [replace(m, text=scrub(m.text), context=scrub(m.context)) for m in a.mentions]
        out.append(a.model_copy(update={
            "name": name, "description": scrub(a.description),
            "aliases": [x for x in (scrub(al) for al in a.aliases) if not is_id_like(x)],
            "conflict_details": scrub(a.conflict_details) if a.conflict_details else
            a.conflict_details,
            "mentions": mentions}))
    return out


def save_extraction(project: Project, extracted: list[ExtractedAsset], *, extractor: str,
                    model: str | None, script_path: str, script_sha256: str,
                    mark_stale: bool = True,
                    started: tuple[int, int | None] | None = None) -> dict[str, Any]:
    """Write an extraction in one transaction; re-extraction updates in place.

    Stored assets are matched by type and name/alias. Fields the user edited, merged or
    locked assets are never overwritten; new assets are added; extracted assets that vanished
    from the script are marked stale, not deleted (only with `mark_stale`: a run whose passes
    failed did not look at everything, so it marks nothing). Everything that decides a write
    (the stage, the stored assets, the branch/style the command `started` on) is read inside
    the transaction, so two extracts at once never add an asset twice.
    """
    cap(extracted)
    report: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": [], "kept_locked": [],
                                    "stale": [], "revived": [], "skipped_removed": []}
    with atomic(project.db):
        check_started_on(project, started, "extract")
        project.require_draft("extract")
        existing = rows(project)
        before = snapshot(project, [r["id"] for r in existing])
        index: dict[tuple[str, str], dict] = {}
        retyped: dict[str, dict] = {}  # assets whose type the user changed match any type
        for r in existing:
            meta = meta_of(r)
            for k in _keys(r["name"], meta.get("aliases", [])):
                index.setdefault((r["asset_type"], k), r)
                if "type" in meta.get("user_fields", []):
                    retyped.setdefault(k, r)
        # what the user removed or merged (curation_records): an existing asset still wins
        removed: set[tuple[str, str]] = set()
        merged: dict[tuple[str, str], int] = {}
        by_id = {r["id"]: r for r in existing}
        for c in project.db.query("SELECT kind, asset_type, name_key, target_id FROM "
                                  "curation_records WHERE branch_id = ?", [project.branch_id]):
            if c["kind"] == "removed":
                removed.add((c["asset_type"], c["name_key"]))
            elif c["target_id"] in by_id:
                merged[(c["asset_type"], c["name_key"])] = c["target_id"]
        matched: dict[int, list[ExtractedAsset]] = {}
        new: list[ExtractedAsset] = []
        anything_to_match = bool(index or retyped or merged or removed)
        for a in extracted:
            if not anything_to_match:  # a first extraction: every asset is new
                new.append(a)
                continue
            keys = _keys(a.name, a.aliases)
            hit = next((index[(a.type, k)] for k in keys if (a.type, k) in index), None)
            if hit is None:
                hit = next((retyped[k] for k in keys if k in retyped), None)
            if hit is None:
                into = next((merged[(a.type, k)] for k in keys if (a.type, k) in merged), None)
                hit = by_id.get(into) if into is not None else None
            if hit is None and any((a.type, k) in removed for k in keys):
                report["skipped_removed"].append(a.name)  # "skipped: removed by you"
                continue
            if hit is None:
                new.append(a)
            elif hit["origin"] == "script-tags" and a.extra.get("origin") != "script-tags":
                continue  # the script's own tags are never overridden by extraction
            else:
                matched.setdefault(hit["id"], []).append(a)
        touched: list[int] = []
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
        branch_id, at = project.branch_id, now()
        touched += insert_assets(project, (  # a generator: one row built at a time
            {"name": a.name, "asset_type": a.type, "description": a.description,
             "metadata": _metadata(a, extractor, model),
             "origin": a.extra.get("origin", "extracted"),
             "mentions": ({"scene_number": m.scene_number, "text": m.text, "context": m.context}
                          for m in a.mentions)}
            for a in new), branch_id=branch_id, at=at)
        report["added"] += [a.name for a in new]
        for r in existing if mark_stale else []:
            if r["id"] not in matched and r["origin"] == "extracted" and not r["stale"]:
                update_asset(project, r["id"], stale=1)
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
    meta = meta_of(row)
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
        new_meta["aliases"] = sorted(aliases, key=str.lower)[:MAX_ALIASES]
    for key in ("confidence_score", "has_conflicts", "conflict_details", "source_mentions",
                "extractor", "model"):
        if key not in user and not (key in ("has_conflicts", "conflict_details")
                                    and meta.get("conflict_resolution")):
            new_meta[key] = fresh[key]
    if "is_priority" not in user:
        new_meta["is_priority"] = fresh["is_priority"]
    if "category" not in user:
        for key in BREAKDOWN_KEYS:
            if key in fresh:
                new_meta[key] = fresh[key]
    description = row["description"]
    if "description" not in user and best.description:
        description = best.description
    mentions = set(list(dict.fromkeys((m.scene_number, m.text, m.context)
                                      for a in found for m in a.mentions))[:MAX_MENTIONS])
    old_mentions = {(r["scene_number"], r["text"], r["context"])
                    for r in mentions_of(project, row["id"])}
    changed = (description != row["description"] or new_meta != meta or mentions != old_mentions
               or row["stale"])
    if not changed:
        return False
    update_asset(project, row["id"], description=description, metadata=new_meta, stale=0)
    if mentions != old_mentions:
        replace_mentions(project, row["id"], [{"scene_number": s, "text": t, "context": c}
                                              for s, t, c in sorted(mentions)])
    return True


