"""The built-in extractor: offline, rule-based, deterministic, no network.

    BuiltinExtractor                                                the Extractor (base.py)
    extract_builtin(sp, style_name=None) -> list[ExtractedAsset]   both passes
    distill_builtin(asset, sp, style_name=None) -> ExtractedAsset   pass 2 for one asset

Pass 1 reads the parsed script once (builtin/text.py: build_index) and finds
- characters from cues (extensions and CONT'D dropped, joint cues split, YOUNG X / X (V.O.) as
  X, first/last-name and title variants merged when the script supports it) and from names
  introduced in capitals in action; group cues only when they speak a lot (builtin/characters.py);
- locations from scene headings, variants merged, forced shot headings and VARIOUS LOCATIONS
  left out (builtin/places.py);
- props from capitalised objects in action and objects handled in more than one scene
  (builtin/props.py).
Aliases are then unified with the shared rules of extract/merge.py, and pass 2
(builtin/describe.py) writes each description from the script's own sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from stage5cli.extract.base import ExtractionResult, Extractor, Progress
from stage5cli.extract.builtin.characters import (
    Character,
    aliases,
    character_key,
    core_tokens,
    display,
    find_characters,
)
from stage5cli.extract.builtin.describe import MAX_CONTEXT_MENTIONS, bound_mentions, describe_all
from stage5cli.extract.builtin.places import Place, find_places
from stage5cli.extract.builtin.props import (
    Prop,
    find_props,
    link_vehicles,
    prop_aliases,
    prop_name,
)
from stage5cli.extract.builtin.text import build_index
from stage5cli.extract.merge import match_key, merge_assets
from stage5cli.gcpause import collector_paused
from stage5cli.models import ExtractedAsset, Mention
from stage5cli.screenplay.model import Screenplay
from stage5cli.store.extracted import most_seen

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["BuiltinExtractor", "distill_builtin", "extract_builtin", "find_assets"]


def _bounded(rows: list[tuple[int, str, str]]) -> list[Mention]:
    """Mentions from (scene, text, context) rows in scene order (stable), a context quote on
    the first MAX_CONTEXT_MENTIONS only: what describe.bound_mentions makes of them, built
    without a copy per mention (a place seen in 20,000 scenes)."""
    rows.sort(key=lambda r: r[0])
    return [Mention(scene_number=scene, text=text,
                    context=context if i < MAX_CONTEXT_MENTIONS else "")
            for i, (scene, text, context) in enumerate(rows)]


def _character_asset(c: Character) -> ExtractedAsset:
    rows = [(scene, text, context) for scene, (text, context, _kind) in sorted(c.mentions.items())]
    if c.intro is not None and c.intro.scene not in c.mentions:
        rows.append((c.intro.scene, c.intro.text, ""))
    return ExtractedAsset(
        name=display(c),
        type="character",
        aliases=aliases(c),
        mentions=_bounded(rows),
        extra={"lines": c.lines, "source": "cue" if c.from_cue else "action"},
    )


def _place_asset(p: Place, vehicle: str = "") -> ExtractedAsset:
    return ExtractedAsset(
        name=p.display,
        type="location",
        aliases=sorted(p.aliases),
        mentions=_bounded([(scene, p.display, heading) for scene, heading in p.scenes.items()]),
        extra={"source": "heading", **({"vehicle": vehicle} if vehicle else {})},
    )


def _prop_asset(p: Prop) -> ExtractedAsset:
    name = prop_name(p)
    return ExtractedAsset(
        name=name,
        type="prop",
        aliases=prop_aliases(p, name),
        mentions=_bounded([(scene, text, context)
                           for scene, (text, context) in p.mentions.items()]),
        extra={
            "source": "caps" if p.caps else "handled" if p.handled else "recurring",
            "handled": p.handled,
            "handled_scenes": p.handled_in(),
            **({"set": p.set_name} if p.set_name else {}),
        },
    )


def find_assets(sp: Screenplay) -> list[ExtractedAsset]:
    """Pass 1 only: characters, locations and props with aliases and scene mentions."""
    index = build_index(sp)
    return _pass1(index)


def _pass1(index, left_out: dict[str, int] | None = None) -> list[ExtractedAsset]:
    """Pass 1 on the index: at most MAX_ASSETS_PER_KIND of each kind, the most-seen (how many
    of each kind were left out is added to `left_out` when given)."""
    chars, caps_props = find_characters(index)
    char_words = {w for c in chars for n in c.names for w in core_tokens(character_key(n))}
    # at most MAX_ASSETS_PER_KIND places, the most-seen (the rest is left out)
    places = index.most_seen("location", find_places(index), lambda p: p.scenes)
    props = find_props(index, caps_props, char_words)
    link_vehicles(index, props, places)
    vehicle_of = {p.set_name: prop_name(p) for p in props if p.set_name}
    assets = [_character_asset(c) for c in chars]
    assets += [_place_asset(p, vehicle_of.get(p.display, "")) for p in places]
    assets += [_prop_asset(p) for p in props if p.mentions]
    del chars, places, props, caps_props  # freed before the merge (240,000 places, say)
    merged, dropped = most_seen(merge_assets(assets), index.max_assets)
    del assets
    if left_out is not None:
        for kind in {*index.left_out, *dropped}:
            left_out[kind] = index.left_out.get(kind, 0) + dropped.get(kind, 0)
    for a in merged:
        a.mentions = bound_mentions(a.mentions)
    return merged


def extract_builtin(sp: Screenplay, *, style_name: str | None = None,
                    left_out: dict[str, int] | None = None,
                    max_assets: int | None = None) -> list[ExtractedAsset]:
    """Both passes on a parsed script; deterministic, offline. Order: characters, locations,
    props, each by first scene. At most `max_assets` (MAX_ASSETS_PER_KIND) of each kind: the
    ones left out are counted as _pass1 says."""
    with collector_paused():
        index = build_index(sp)
        index.max_assets = max_assets
        assets = _pass1(index, left_out)
        names = [n for a in assets if a.type == "character" for n in [a.name, *a.aliases]]
        return describe_all(index, assets, style_name, character_names=names, hand_over=True)


def distill_builtin(
    asset: ExtractedAsset,
    sp: Screenplay,
    *,
    style_name: str | None = None,
    instructions: str | None = None,
) -> ExtractedAsset:
    """Pass 2 for one asset (the `describe` command without a model). The characters' names
    come from pass 1, as in `extract_builtin`, so the same asset gets the same description;
    the user's `instructions` (`describe -i`) are appended as written."""
    index = build_index(sp)
    found = _pass1(index)
    names = [n for a in found if a.type == "character" for n in [a.name, *a.aliases]]
    # the script's other props compete for their sentences as in extract: "his SILVER BERETTA"
    # belongs to the silver one, not to the black Beretta being described
    own = match_key(asset)
    twins = [a for a in found if asset.type == "prop" == a.type and not match_key(a) & own]
    got = describe_all(index, [asset, *twins], style_name, character_names=names)[0]
    guidance = " ".join((instructions or "").split())
    if guidance:
        if guidance[-1] not in ".!?":
            guidance += "."
        got.description = f"{got.description} {guidance[:1].upper()}{guidance[1:]}".strip()
        got.extra = {**got.extra, "instructions": guidance}
    return got


class BuiltinExtractor(Extractor):
    """The offline extractor: no model, no key, no request; the same script gives the same
    assets."""

    extractor_id = "builtin"

    class Options(BaseModel):
        max_assets: int | None = None  # kept of each kind (None: MAX_ASSETS_PER_KIND)

    def extract(self, screenplay: Screenplay, *, db: sqlite_utils.Database, style_name: str,
                progress: Progress | None = None) -> ExtractionResult:
        if progress:
            progress("extract", 0, 1)
        left_out: dict[str, int] = {}
        assets = extract_builtin(screenplay, style_name=style_name, left_out=left_out,
                                 max_assets=self.options.max_assets)
        if progress:
            progress("extract", 1, 1)
        return ExtractionResult(assets=assets, left_out=left_out,
                                max_assets=self.options.max_assets)

    def distill(self, asset: ExtractedAsset, *, db: sqlite_utils.Database, style_name: str,
                script: Callable[[], Screenplay], instructions: str | None = None,
                ) -> ExtractedAsset:
        return distill_builtin(asset, script(), style_name=style_name, instructions=instructions)

    def plan(self, screenplay: Screenplay, *, style_name: str) -> dict[str, Any]:
        return {"requests": 0, "input_tokens_estimate": 0, "cost_usd_estimate": 0.0}

    def check_environment(self) -> tuple[str, bool, str]:
        return "LLM", True, "no model configured: the offline built-in extractor is used"
