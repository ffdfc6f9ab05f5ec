"""Image prompts that fit the model's text window without losing the style.

`compose(capsule, name=, asset_type=, description=, budget=)` builds

    template(subject) , type addition , lighting , camera , colour palette WORDS

where the style's defining terms (the template's own words, the type addition, lighting and
camera) are never cut. The subject is the asset's name and type plus the description's most
visual clauses, as many as fit; the palette is rendered as colour names (hex codes mean
nothing to a text encoder). Whatever had to be left out is listed in `dropped`.

Fitting order, each step only if the whole prompt still fits the budget:
1. the style core with the name and type (a style whose core alone does not fit is refused
   with `PromptTooLong`, naming the window);
2. description clauses: the first one (it says who or what the asset is), then the most
   visual ones, leaving room for one palette colour; a first clause too long for what is left
   is cut at a word boundary;
3. palette colours in the style's order, then any smaller clauses that still fit.
Clauses are sent in their original order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .images.budget import TextBudget
    from .styles import StyleCapsule

MIN_SUBJECT_TOKENS = 4  # room a style must leave for the subject (style import check)
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_CLAUSE = re.compile(r",\s+|\s+(?:and|but|while|whose)\s+(?=\w+\s+\w+)")
_FILLER = re.compile(
    r"^(?:and\s+|but\s+)?(?:(?:he|she|it|they|this|there)(?:'s)?\s+"
    r"(?:is|are|was|were|has|have|had|wears|wear|wore|looks|seems)\s+)?", re.IGNORECASE)


_DANGLING = frozenset("a an the of with and or but in on at to for from by his her their its".split())


class PromptTooLong(UsageError):
    """The style's own terms do not fit the model's text window."""


@dataclass
class Clause:
    index: int
    text: str
    score: float


@dataclass
class ComposedPrompt:
    text: str  # exactly what is sent
    count: int | None  # in `unit`, as the budget's counter measures it
    limit: int | None
    unit: str | None
    encoder: str
    long_prompt: str | None
    style_terms: list[str]
    palette: list[str]  # colour words sent
    clauses: list[str]  # description clauses sent
    dropped: list[str] = field(default_factory=list)  # clauses and colours left out
    cut: str | None = None  # a clause sent shortened (its full text)
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """What the job row and the PNG `stage5` chunk record about the prompt."""
        return {"prompt_sent": self.text, "count": self.count, "limit": self.limit,
                "unit": self.unit, "encoder": self.encoder, "long_prompt": self.long_prompt,
                "dropped": self.dropped, "cut": self.cut, "notes": self.notes}


# ---- the description -------------------------------------------------------------------------


def _visual_words() -> frozenset[str]:
    from .extract.builtin import lexicon as lex

    words = set(lex.VISUAL_WORDS | lex.APPEARANCE_WORDS | lex.APPEARANCE_NOUNS)
    for name in ("MATERIALS", "GARMENTS", "BODY_PARTS", "OBJECT_NOUNS", "PERSON_NOUNS"):
        words |= set(getattr(lex, name, ()))
    return frozenset(w.lower() for w in words)


_VISUAL: frozenset[str] | None = None


def clauses(description: str) -> list[Clause]:
    """The description split into short clauses, each scored by how visual it is."""
    global _VISUAL
    if _VISUAL is None:
        _VISUAL = _visual_words()
    text = " ".join((description or "").split())
    out: list[Clause] = []
    for sentence in _SENTENCE.split(text):
        for part in _CLAUSE.split(sentence):
            part = _FILLER.sub("", part.strip()).strip(" .,;:!?-\"'")
            if not part:
                continue
            words = re.findall(r"[A-Za-z0-9']+", part.lower())
            hits = sum(1 for w in words if w in _VISUAL or w.rstrip("s") in _VISUAL)
            # the first clause says who or what the asset is: it always ranks first
            score = 100.0 if not out else 2.0 * hits - 0.08 * len(words)
            out.append(Clause(len(out), part, score))
    return out


# ---- composing -------------------------------------------------------------------------------


def _singular(unit: str | None) -> str:
    return (unit or "").removesuffix("s")


def _join(parts: list[str]) -> str:
    return ", ".join(p.strip().rstrip(",.").strip() for p in parts if p and p.strip())


def style_terms(capsule: StyleCapsule, asset_type: str) -> list[str]:
    """The terms of the style that every prompt carries verbatim."""
    before, after = capsule.prompt.split("{subject}")
    terms = [t.strip() for t in re.split(r",", before + " " + after) if t.strip()]
    terms += [t for t in (getattr(capsule.asset_types, asset_type, ""), capsule.lighting,
                          capsule.camera) if t.strip()]
    return [t.strip().rstrip(",.").strip() for t in terms]


def _render(capsule: StyleCapsule, asset_type: str, subject: list[str], colours: list[str]) -> str:
    head = capsule.prompt.replace("{subject}", _join(subject))
    tail = [getattr(capsule.asset_types, asset_type, ""), capsule.lighting, capsule.camera]
    if colours:
        tail.append("colour palette " + ", ".join(colours))
    return _join([" ".join(head.split()), *tail])


def core_size(capsule: StyleCapsule, asset_type: str, budget: TextBudget) -> int | None:
    """What the style's own terms take in the budget's unit (no subject, no palette)."""
    return budget.count(_render(capsule, asset_type, [], []))


def check_fits(capsule: StyleCapsule, budget: TextBudget, *, label: str | None = None) -> None:
    """PromptTooLong when the style's core (for any asset type) leaves no room for a subject."""
    if budget.limit is None or budget.counter is None:
        return
    room = MIN_SUBJECT_TOKENS if budget.unit == "tokens" else 20
    for kind in ("character", "prop", "location"):
        size = core_size(capsule, kind, budget)
        if size is not None and size + room > budget.limit:
            who = label or f"style {capsule.id}"
            raise PromptTooLong(
                f"{who}: the prompt template, lighting, camera and {kind} addition alone take "
                f"{size} {budget.unit}, which leaves no room for the subject in the "
                f"{budget.limit}-{_singular(budget.unit)} window of {budget.encoder}; shorten them")


def compose(capsule: StyleCapsule, *, name: str, asset_type: str, description: str,
            budget: TextBudget | None = None) -> ComposedPrompt:
    from .colours import palette_words
    from .images.budget import unlimited

    budget = budget or unlimited()
    colours_all = palette_words(capsule.palette)
    parts = clauses(description)
    name = " ".join(name.split())
    subject = [name, asset_type]

    def text_of(sub: list[str], chosen: list[Clause], colours: list[str]) -> str:
        ordered = [c.text for c in sorted(chosen, key=lambda c: c.index)]
        return _render(capsule, asset_type, sub + ordered, colours)

    def done(sub: list[str], chosen: list[Clause], colours: list[str], cut: str | None,
             dropped_name: list[str]) -> ComposedPrompt:
        text = text_of(sub, chosen, colours)
        sent = {c.index for c in chosen}
        dropped = dropped_name + [c.text for c in parts if c.index not in sent]
        dropped += [f"colour {c}" for c in colours_all if c not in colours]
        return ComposedPrompt(
            text=text, count=budget.count(text), limit=budget.limit, unit=budget.unit,
            encoder=budget.encoder, long_prompt=budget.long_prompt,
            style_terms=style_terms(capsule, asset_type), palette=colours,
            clauses=[c.text for c in sorted(chosen, key=lambda c: c.index)], dropped=dropped,
            cut=cut, notes=list(budget.notes))

    if budget.limit is None or budget.counter is None:
        return done(subject, parts, colours_all, None, [])
    fits = budget.fits
    core = _render(capsule, asset_type, [], [])
    if not fits(core):
        raise PromptTooLong(
            f"style {capsule.id}: the prompt template, lighting, camera and {asset_type} "
            f"addition alone take {budget.count(core)} {budget.unit}, over the {budget.limit}-"
            f"{_singular(budget.unit)} window of {budget.encoder}; shorten the style capsule")
    dropped_name: list[str] = []
    if not fits(text_of(subject, [], [])):  # a very long name: drop the type, then cut the name
        subject = [name]
        dropped_name.append(asset_type)
        words = name.split()
        while len(words) > 1 and not fits(text_of([" ".join(words)], [], [])):
            words.pop()
        if not fits(text_of([" ".join(words)], [], [])):
            raise PromptTooLong(
                f"style {capsule.id}: its terms leave no room for the subject in the "
                f"{budget.limit}-{_singular(budget.unit)} window of {budget.encoder}")
        if len(words) < len(name.split()):
            dropped_name.append(" ".join(name.split()[len(words):]))
        subject = [" ".join(words)]
    chosen: list[Clause] = []
    colours: list[str] = []
    cut: str | None = None
    reserve = colours_all[:1]
    by_score = sorted(parts, key=lambda c: (-c.score, c.index))
    cost = {c.index: (budget.count(c.text) or 0) - (2 if budget.unit == "tokens" else 0)
            for c in parts}  # a clause's own size (word-local tokenizers: nearly additive)

    def room(sub: list[str], chosen: list[Clause], colours: list[str]) -> int:
        return budget.limit - (budget.count(text_of(sub, chosen, colours)) or 0)

    def may_fit(c: Clause, left: int) -> bool:
        return cost[c.index] <= left + 2  # cheap prefilter; the real count decides
    left = 0
    for c in by_score:
        if not chosen:
            # the most visual clause always goes in: whole, or cut at a word boundary
            if fits(text_of(subject, [c], [])):
                chosen = [c]
                left = room(subject, chosen, reserve)
                continue
            words = c.text.split()
            lo, hi = 2, len(words) - 1  # the longest prefix that fits (at least two words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits(text_of(subject, [Clause(c.index, " ".join(words[:mid]), 0)], [])):
                    lo = mid
                else:
                    hi = mid - 1
            words = words[:max(lo, 2)]
            while len(words) > 2 and words[-1].lower() in _DANGLING:
                words.pop()
            piece = Clause(c.index, " ".join(words), c.score)
            if len(words) >= 2 and fits(text_of(subject, [piece], [])):
                chosen = [piece]
                cut = c.text
                parts = [piece if x.index == c.index else x for x in parts]
            break  # nothing more fits after a cut clause
        # later clauses (visual ones only) leave room for one palette colour
        elif c.score > 0 and may_fit(c, left) and fits(text_of(subject, chosen + [c], reserve)):
            chosen = chosen + [c]
            left = room(subject, chosen, reserve)
    for colour in colours_all:
        if fits(text_of(subject, chosen, colours + [colour])):
            colours.append(colour)
    left = room(subject, chosen, colours)
    for c in by_score:
        if (c.score > 0 and c.index not in {x.index for x in chosen} and may_fit(c, left)
                and fits(text_of(subject, chosen + [c], colours))):
            chosen = chosen + [c]
            left = room(subject, chosen, colours)
    result = done(subject, chosen, colours, cut, dropped_name)
    if cut is not None:
        result.dropped.insert(0, f"(cut) {cut}")
    return result
