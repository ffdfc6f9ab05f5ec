"""Alias and duplicate merging shared by both extractors and by re-extraction.

Two assets are the same when they have the same type and share a normalised name or alias
("THE OLD MAN", "Old Man", "old man's" and "OLD MAN (V.O.)" all normalise to "old man").
Matching is transitive: A~B through one alias and B~C through another make one asset.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from stage5cli.models import ASSET_TYPES, ExtractedAsset, Mention

from .names import SPACES, Memo, UnionFind, display_name, norm_name

__all__ = ["GENERIC", "display_name", "match_key", "merge_assets", "norm_name"]

# Words that can never identify an asset on their own (an LLM sometimes lists them as aliases).
GENERIC = frozenset(
    "i me you he him his she her hers it its we us they them their this that there here "
    "someone somebody everyone everybody nobody".split()
)


def _keys(names: Iterable[str], norm: Callable[[str], str] = norm_name) -> set[str]:
    out = set()
    for n in names:
        k = norm(n)
        if k and k not in GENERIC:
            out.add(k)
    return out


def match_key(asset: ExtractedAsset | Mapping) -> set[str]:
    """Normalised name and aliases of an extracted asset or a stored asset row.

    Accepts an ExtractedAsset, or a dict with `name` and `aliases` (or a `metadata` dict/JSON
    holding `aliases`, as in a `project_assets` row).
    """
    if isinstance(asset, Mapping):
        name = asset.get("name") or ""
        aliases = asset.get("aliases")
        if aliases is None:
            meta = asset.get("metadata") or {}
            if isinstance(meta, str):
                try:
                    meta = json.loads(meta)
                except ValueError:
                    meta = {}
            aliases = meta.get("aliases") if isinstance(meta, Mapping) else None
        aliases = list(aliases or [])
    else:
        name, aliases = asset.name, list(asset.aliases)
    return _keys([name, *aliases])


def _merge_mentions(groups: Iterable[Iterable[Mention]]) -> list[Mention]:
    seen: dict[tuple[int, str], Mention] = {}
    for mentions in groups:
        for m in mentions:
            key = (m.scene_number, m.text.strip().lower())
            have = seen.get(key)
            if have is None:
                seen[key] = m  # shared with the input; never changed in place (copy below)
            elif not have.context and m.context:
                seen[key] = replace(have, context=m.context)
    return sorted(seen.values(), key=lambda m: m.scene_number)  # stable: first seen first


def _unchanged(a: ExtractedAsset) -> bool:
    """True when `_combine([a])` would give `a` again: its name is already the display form,
    its aliases are already tidy and distinct, its mentions distinct and in scene order (most
    assets of a long script, each found once)."""
    if display_name(a.name) != a.name:
        return False
    seen = {a.name.lower()}
    for alias in a.aliases:
        low = alias.lower()
        if not alias or low in seen or SPACES.sub(" ", alias).strip() != alias:
            return False
        seen.add(low)
    last, keys = -(1 << 62), set()
    for m in a.mentions:
        key = (m.scene_number, m.text.strip().lower())
        if m.scene_number < last or key in keys:
            return False
        last = m.scene_number
        keys.add(key)
    return True


def _canonical(members: list[ExtractedAsset]) -> str:
    """Most frequent spelling (by normalised form, then exact), ties to more words, longer."""
    if len(members) == 1:  # the common case, and what the rules below give for one
        return display_name(members[0].name)
    spellings = [display_name(a.name) for a in members]
    by_key = Counter(norm_name(s) for s in spellings)
    best_key = max(by_key, key=lambda k: (by_key[k], len(k.split()), len(k), k))
    exact = Counter(s for s in spellings if norm_name(s) == best_key)
    return max(exact, key=lambda s: (exact[s], not s.isupper(), len(s), s))


def _combine(members: list[ExtractedAsset]) -> ExtractedAsset:
    if len(members) == 1 and _unchanged(members[0]):
        return members[0]
    return _combine_all(members)


def _combine_all(members: list[ExtractedAsset]) -> ExtractedAsset:
    name = _canonical(members)
    aliases: list[str] = []
    seen = {name.lower()}
    for a in members:
        for alias in [a.name, *a.aliases]:
            alias = SPACES.sub(" ", alias or "").strip()
            if alias and alias.lower() not in seen:
                seen.add(alias.lower())
                aliases.append(alias)
    extra: dict = {}
    for a in members:
        for k, v in a.extra.items():
            extra.setdefault(k, v)
    described = [a for a in members if a.description]
    conflicts = [a.conflict_details for a in members if a.conflict_details]
    # every value below comes from validated assets and has its field's type: no re-validation
    # (thousands of assets on a long script)
    return ExtractedAsset.model_construct(
        name=name,
        type=members[0].type,
        aliases=aliases,
        mentions=_merge_mentions(a.mentions for a in members),
        description=described[0].description if described else "",
        confidence_score=max(a.confidence_score for a in members),
        is_priority=any(a.is_priority for a in members),
        has_conflicts=any(a.has_conflicts for a in members),
        conflict_details="; ".join(dict.fromkeys(conflicts)),
        extra=extra,
    )


def merge_assets(assets: Iterable[ExtractedAsset], *,
                 fold: Callable[[str], str] | None = None) -> list[ExtractedAsset]:
    """Merge same-type assets that share a normalised name or alias (transitively).

    `fold` (the LLM path's, litellm_extractor.fold_key) maps each normalised key to a looser
    one that also matches ("lanterns" = "lantern", "ines" = "inés"): answers of separate
    chunks name the same thing with such small differences.
    The result holds the union of aliases and of mentions (deduplicated by scene and text);
    its order is deterministic: by type, first scene, then normalised name. An asset that
    needs no change comes back as the same object (every caller hands over fresh assets and
    keeps only the result), and mentions are shared with the inputs, never changed in place.
    """
    items = list(assets)
    same = UnionFind(range(len(items)))
    owner: dict[tuple[str, str], int] = {}
    # each distinct name normalised once for the keys and the order below (norm_name's own
    # cache is bounded: a script of 240,000 distinct headings would miss it every time)
    norm = Memo(norm_name).__getitem__

    for i, a in enumerate(items):
        keys = _keys([a.name, *a.aliases], norm)
        if fold is not None:
            keys |= {f for f in map(fold, keys) if f}
        for k in keys:
            j = owner.setdefault((a.type, k), i)
            if j != i:
                same.union(i, j)

    groups: dict[int, list[ExtractedAsset]] = {}
    for i, a in enumerate(items):
        groups.setdefault(same.find(i), []).append(a)
    merged = [_combine(members) for _, members in sorted(groups.items())]

    def order(a: ExtractedAsset) -> tuple:
        scenes = a.scenes
        return (ASSET_TYPES.index(a.type), scenes[0] if scenes else 1 << 30, norm(a.name), a.name)

    return sorted(merged, key=order)
