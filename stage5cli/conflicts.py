"""Visual conflicts: listing them, suggesting a resolution (offline rule or an LLM), applying
it or recording a human choice. Every change is one transaction with its history event."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from . import store
from .db import atomic, now
from .errors import UsageError
from .history import record
from .project import Project
from .store import as_extracted, meta_of

if TYPE_CHECKING:
    from .extract.base import Extractor


class ConflictView(BaseModel):
    """One asset with has_conflicts (`conflicts --json`)."""

    id: int
    name: str
    type: str
    description: str
    conflict_details: str
    scenes: list[int]
    scenes_involved: list[int]
    mentions: list[store.MentionView]


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
        meta = meta_of(r)
        if not meta.get("has_conflicts"):
            continue
        mentions = store.mentions_of(project, r["id"])
        details = meta.get("conflict_details") or ""
        involved = _involved(details, mentions, r["name"])
        out.append(ConflictView(
            id=r["id"], name=r["name"], type=r["asset_type"], description=r["description"] or "",
            conflict_details=details, scenes=sorted({m["scene_number"] for m in mentions}),
            scenes_involved=involved,
            mentions=[store.MentionView(scene_number=m["scene_number"], text=m["text"],
                                        context=m["context"])
                      for m in mentions if m["scene_number"] in involved]))
    return out


def _conflicted(project: Project, ref: str) -> dict[str, Any]:
    row = store.resolve(project, ref)
    if not meta_of(row).get("has_conflicts"):
        raise UsageError(f"{row['name']} has no recorded conflicts; to change its description "
                         f"run stage5 edit {store.quoted(row['name'])} --description TEXT")
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
    meta = meta_of(row)
    details = meta.get("conflict_details") or ""
    mentions = store.mentions_of(project, row["id"])
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
        # without a noun: "red in most scenes", never "the is red"
        why = (f"the {what}is {chosen.text} in most scenes ({tally})" if what
               else f"{chosen.text} in most scenes ({tally})")
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


def llm_suggestion(project: Project, row: dict[str, Any], extractor: Extractor) -> Suggestion:
    """The extractor's own fix (the LLM: one cached JSON call with prompts/conflict.txt)."""
    _, capsule = project.require_style()
    meta = meta_of(row)
    fix = extractor.suggest_conflict_fix(as_extracted(project, row), db=project.db,
                                         style_name=capsule.name)
    from .secrets import scrub

    desc = store.check_description(scrub(fix.description) if fix else "")
    return Suggestion(id=row["id"], name=row["name"], current_description=row["description"] or "",
                      conflict_details=meta.get("conflict_details") or "", description=desc,
                      reasoning=scrub(fix.reasoning) if fix else "",
                      method="llm" if desc else "none", model=extractor.model)


def suggest(project: Project, ref: str, *, model: str | None = None,
            api_base: str | None = None, api_key_env: str | None = None) -> Suggestion:
    from .extract.registry import resolve

    row = _conflicted(project, ref)
    extractor = resolve(model, api_base=api_base, api_key_env=api_key_env)
    if extractor.suggests_conflict_fixes:
        return llm_suggestion(project, row, extractor)
    return offline_suggestion(project, row)  # the built-in extractor: the majority rule


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
        meta = meta_of(row)
        meta["conflict_resolution"] = {**resolution, "details": meta.get("conflict_details", ""),
                                       "previous_description": row["description"] or "",
                                       "at": now()}
        meta["has_conflicts"] = False
        meta["conflict_details"] = ""
        store.own_fields(meta, ["description"])
        store.update_asset(project, row["id"], description=description, metadata=meta)
        record(project, command, f"{command} {row['name']}", before, [row["id"]])
    return store.asset_view(project, row["id"])


def apply_suggestion(project: Project, ref: str, *, model: str | None = None,
                     api_base: str | None = None, api_key_env: str | None = None
                     ) -> tuple[Suggestion, store.AssetView]:
    project.require_draft("resolve conflicts")
    row = _conflicted(project, ref)
    store.require_unlocked(row, "resolve conflicts on")
    s = suggest(project, ref, model=model, api_base=api_base, api_key_env=api_key_env)
    if not s.usable:
        raise UsageError(f"no suggestion to apply for {s.name} ({s.reasoning}); "
                         f"run stage5 conflicts {store.quoted(s.name)} --resolve TEXT")
    view = _settle(project, ref, "conflicts apply", s.description,
                   {"by": "suggestion", "method": s.method, "model": s.model, "chosen": s.chosen,
                    "reasoning": s.reasoning})
    return s, view


def resolve_conflict(project: Project, ref: str, text: str) -> store.AssetView:
    return _settle(project, ref, "conflicts resolve", text, {"by": "user"})

