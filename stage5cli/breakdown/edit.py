"""`stage5 edit ASSET --category C`: set an asset's breakdown category (and, for wardrobe, who
wears it). One transaction with its history entry; the category becomes user-owned, so
re-extraction keeps it."""

from __future__ import annotations

from stage5cli.db import atomic
from stage5cli.project import Project

from .categories import by_id, parse_category


def set_category(project: Project, ref: str, category: str, *,
                 wearer: str | None = None) -> tuple[object, bool]:
    """(the asset view now, whether anything changed)."""
    from stage5cli import store
    from stage5cli.errors import UsageError
    from stage5cli.history import record
    from stage5cli.store import asset_view, meta_of, own_fields, update_asset

    cat = parse_category(category)
    with atomic(project.db):
        project.require_draft("edit assets")
        row = store.resolve(project, ref)
        store.require_unlocked(row, "edit")
        if row["asset_type"] not in by_id(cat).types:
            allowed = ", ".join(by_id(cat).types)
            raise UsageError(f"category {cat} is for {allowed} assets, and {row['name']} is a "
                             f"{row['asset_type']} (change it with --type first)")
        meta = meta_of(row)
        info = dict(meta.get("category_info") or {})
        if wearer is not None:
            if wearer.strip():
                info["wearer"] = store.resolve(project, wearer)["name"]
            else:
                info.pop("wearer", None)
        current = store.view(row, []).category
        if current == cat and info == (meta.get("category_info") or {}):
            return asset_view(project, row["id"]), False
        before = store.snapshot(project, [row["id"]])
        meta.update({"category": cat, "category_info": info, "category_source": "user"})
        own_fields(meta, ["category"])
        update_asset(project, row["id"], metadata=meta)
        record(project, "edit", f"edit {row['name']}: category {cat}", before, [row["id"]],
               fields=["category"])
    return asset_view(project, row["id"]), True
