"""Pass 1 for locations: one place per distinct scene-heading location, variants merged.

Policy (documented in tests/data/expectations/README.md as well):
- INT/EXT, time of day, dates and tags are removed (the parser already separates most of them);
  status parts such as DRIVING, FLYING, VARIOUS SHOTS and compass directions are removed too.
- A leading article or position phrase (THE, AT THE, BY THE, OUTSIDE, BEHIND, ON) does not make
  a new place: "BY THE RIVER" is the river. It stays in the displayed name of its own variant.
- "X - Y" / "X / Y" where both parts are places is a sub-location: a location of its own.
  "MOUNT GURU FOREST" and "MOUNT GURU MEADOW" are two places.
- Variants merge: same words ignoring punctuation/hyphens ("BIG-TOP" = "BIG TOP"), same letters
  ignoring spaces ("BACK YARD" = "BACKYARD"), "TOWN OF X" = "X", a parenthesised name
  ("RESTAURANT (LA RUE 14°)" = "LA RUE 14°"), and a shorter name whose words all appear, in order,
  in a longer one with the same first and last word ("BAXTER'S APARTMENT" = "BAXTER'S SAN
  FRANCISCO APARTMENT"), unless an extra word tells them apart ("SCOTT'S NEW APARTMENT").
- Forced "." headings are shots, not places; "VARIOUS LOCATIONS" is none.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from stage5cli.extract.builtin.text import Index
from stage5cli.extract.names import UnionFind
from stage5cli.screenplay.scenes import CONTINUITY_TAGS, TIME_WORDS

_SEPARATORS = re.compile(r"\s+[-–—]+\s+|\s*--+\s*|\s*/\s*|\s*,\s*|\s+[-–—]+$")
_PARENS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
_PUNCT = re.compile(r"[^\w\s&°]")
_ARTICLES = ("THE", "A", "AN")
# words a heading part is made of when it says how or when, not where: movement and shots,
# and the parser's times of day and continuity tags (screenplay/scenes.py)
_STATUS_WORDS = (
    frozenset(
        """
        DRIVING MOVING FLYING RIDING WALKING RUNNING TRAVELING TRAVELLING SAILING DRIFTING PARKED
        VARIOUS SHOTS SHOT SERIES OF MONTAGE INTERCUT INTERCUTTING UNDERWATER POV ESTABLISHING
        TIME MOMENTS MOMENT MAGIC
        """.split()
    )
    | TIME_WORDS
    | {tag for tag in CONTINUITY_TAGS if " " not in tag}
)
_STATUS_LEADS = ("NORTHBOUND", "SOUTHBOUND", "EASTBOUND", "WESTBOUND", "HEADING", "EN ROUTE")
_POSITION_LEADS = (
    "HIGH ABOVE",
    "IN FRONT OF",
    "OUTSIDE OF",
    "NEXT TO",
    "BACK AT",
    "BACK IN",
    "BACK TO",
    "FURTHER ALONG",
    "AT",
    "BY",
    "NEAR",
    "OUTSIDE",
    "INSIDE",
    "BEHIND",
    "ON",
    "ABOVE",
    "BELOW",
    "UNDER",
    "UNDERNEATH",
    "APPROACHING",
    "ACROSS",
    "ALONG",
    "BESIDE",
    "OFF",
)
_OF_PLACES = ("TOWN OF", "CITY OF", "VILLAGE OF")
# words that tell two otherwise equal places apart ("SCOTT'S NEW APARTMENT")
_DISTINGUISHING = frozenset(
    """
    NEW OLD OTHER FIRST SECOND THIRD FOURTH UPPER LOWER BACK FRONT MAIN SIDE NORTH SOUTH EAST
    WEST NORTHERN SOUTHERN EASTERN WESTERN INNER OUTER SMALL BIG LITTLE LARGE MASTER GUEST SPARE
    PRIVATE PUBLIC EMPTY ABANDONED BURNED RUINED DESTROYED FORMER FUTURE UPSTAIRS DOWNSTAIRS
    """.split()
)
_NO_PLACE = frozenset({"VARIOUS LOCATIONS", "VARIOUS", "LOCATIONS", "VARIOUS PLACES", "MONTAGE"})


@dataclass
class Place:
    display: str
    names: Counter = field(default_factory=Counter)
    aliases: set[str] = field(default_factory=set)
    scenes: dict[int, str] = field(default_factory=dict)  # scene -> heading as written
    int_ext: Counter = field(default_factory=Counter)
    times: Counter = field(default_factory=Counter)


def _strip_articles(text: str) -> str:
    words = text.split()
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def _is_status(part: str) -> bool:
    words = part.replace(".", " ").split()
    if not words:
        return True
    if part.startswith(_STATUS_LEADS):
        return True
    return all(w in _STATUS_WORDS or w.isdigit() for w in words)


def place_key(name: str) -> str:
    """Merge key of a place name: no position lead, article, possessive or punctuation."""
    text = name.upper().replace("’", "'")
    text = re.sub(r"'S\b", "", text)
    text = _PUNCT.sub(" ", text.replace("-", " ").replace("/", " "))
    text = " ".join(text.split())
    changed = True
    while changed:
        changed = False
        text = _strip_articles(text)
        for lead in _POSITION_LEADS + _OF_PLACES:
            if text.startswith(lead + " ") and len(text) > len(lead) + 1:
                text = text[len(lead) + 1 :]
                changed = True
    return _strip_articles(text)


def split_location(location: str) -> tuple[str, list[str]] | None:
    """(display name, extra aliases) of a parsed heading location, or None for no place."""
    text = " ".join(location.upper().replace("’", "'").split())
    aliases: list[str] = []

    def _paren(m: re.Match) -> str:
        inner = (m.group(1) or m.group(2) or "").strip()
        if inner and (len(inner.split()) >= 2 or any(ch.isdigit() for ch in inner)):
            if not _is_status(inner):
                aliases.append(inner)
        return " "

    text = _PARENS.sub(_paren, text)
    parts = [p.strip(" .-") for p in _SEPARATORS.split(text)]
    parts = [_strip_articles(p) for p in parts if p and not _is_status(p)]
    # a position-only part ("FURTHER ALONG - ROUGH PATH")
    parts = [p for p in parts if p not in _POSITION_LEADS]
    if not parts:
        return None
    display = " - ".join(parts)
    if display in _NO_PLACE or place_key(display) in _NO_PLACE:
        return None
    return display, aliases


def find_places(index: Index) -> list[Place]:
    variants: dict[str, Place] = {}  # display -> its own Place before merging
    for scene in index.sp.scenes:
        if scene.number == 0 or scene.forced or not scene.location:
            continue
        got = split_location(scene.location)
        if got is None:
            continue
        display, extra = got
        p = variants.get(display)
        if p is None:
            p = variants[display] = Place(display)
        p.names[display] += 1
        p.aliases.update(extra)
        p.scenes.setdefault(scene.number, " ".join(scene.heading.split()))
        if scene.int_ext:
            p.int_ext[scene.int_ext] += 1
        if scene.time_of_day:
            p.times[scene.time_of_day] += 1
    return _merge(list(variants.values()))


def _merge(places: list[Place]) -> list[Place]:
    same = UnionFind(range(len(places)))
    find, union = same.find, same.union
    owner: dict[str, int] = {}
    for i, p in enumerate(places):
        keys = {place_key(p.display)} | {place_key(a) for a in p.aliases}
        for k in keys:
            for kk in (k, k.replace(" ", "")):
                j = owner.setdefault(kk, i)
                if j != i:
                    union(i, j)
    # a shorter name inside a longer one: BAXTER'S APARTMENT ~ BAXTER'S SAN FRANCISCO APARTMENT
    simple = [
        (i, place_key(p.display).split()) for i, p in enumerate(places) if " - " not in p.display
    ]
    by_ends: dict[tuple[str, str], list[tuple[int, list[str]]]] = defaultdict(list)
    for j, long in simple:
        if long:
            by_ends[(long[0], long[-1])].append((j, long))
    for i, short in simple:
        if len(short) < 2:
            continue
        roots = set()
        for j, long in by_ends[(short[0], short[-1])]:  # same first and last word only
            if len(long) <= len(short):
                continue
            it = iter(long)
            if not all(w in it for w in short):
                continue
            extra = list(long)
            for w in short:
                extra.remove(w)
            if any(w in _DISTINGUISHING for w in extra):
                continue
            roots.add(find(j))
        if len(roots) == 1:
            union(i, roots.pop())
    groups: dict[int, list[Place]] = defaultdict(list)
    for i, p in enumerate(places):
        groups[find(i)].append(p)
    out = []
    for members in groups.values():
        merged = Place(members[0].display)
        for m in members:
            merged.names.update(m.names)
            merged.aliases |= m.aliases
            for s, h in m.scenes.items():
                merged.scenes.setdefault(s, h)
            merged.int_ext.update(m.int_ext)
            merged.times.update(m.times)
        merged.display = _best_name(merged)
        merged.aliases = {a for a in merged.aliases | set(merged.names) if a != merged.display}
        merged.scenes = dict(sorted(merged.scenes.items()))
        out.append(merged)
    return out


def _best_name(p: Place) -> str:
    def rank(name: str) -> tuple:
        plain = not name.startswith(tuple(lead + " " for lead in _POSITION_LEADS + _OF_PLACES))
        return (p.names[name], plain, -name.count("-"), -len(name), name)

    return max(p.names, key=rank)
