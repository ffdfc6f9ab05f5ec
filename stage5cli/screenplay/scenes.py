"""Scenes from elements: every reader hands its element dicts to `assemble`.

`split_heading` reads a scene heading into (int_ext, location, time_of_day, tags):
"INT. SCOTT'S APARTMENT - NIGHT" -> ("INT", "SCOTT'S APARTMENT", "NIGHT", []).

The heading vocabulary (TIME_WORDS, TIME_FILLER_WORDS, TAG_PHRASES, is_time_of_day) is the one
copy: extract/names.py builds the name normaliser's time-suffix rule from it and the built-in
extractor's place rules use it.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stage5cli.screenplay.model import Screenplay

_PREFIX = re.compile(
    r"\s*(?P<p>INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|INT|EXT|EST|I\s*/\s*E|E\s*/\s*I)(?:\.|(?=[\s\-,/])|$)[\s\-]*",
    re.I,
)
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_PARENS = re.compile(r"\(([^()]*)\)")
# every alternative starts with a space, a dash or a comma: the lookahead rejects any other
# position at once instead of trying all six (same matches, a third of the time)
_SEPARATOR = re.compile(
    r"(?=[\s\-–—,])(?:\s+[-–—]+\s+|\s*--+\s*|\s*[–—]\s*|\s*,\s*|\s+-+$|^-+\s+)"
)
# a year or a decade somewhere in a tag: (1973), (SUMMER 1944), ('70S), (1980S)
_YEAR = re.compile(r"\b(?:1[0-9]|20)[0-9]{2}S?\b|'[0-9]{2}'?S\b|\b[0-9]{1,2}(?:ST|ND|RD|TH) CENTURY\b")
_PREFIX_NOISE = re.compile(r"[\s.]")

# tags that place a scene in story time rather than at a time of day
CONTINUITY_TAGS = frozenset(
    (
        "PRESENT", "PRESENT DAY", "PAST", "FUTURE", "FLASHBACK", "FLASH BACK", "FLASHFORWARD",
        "FLASH FORWARD",
    )
)
TAG_PHRASES = CONTINUITY_TAGS | frozenset(
    (
        "DREAM", "FANTASY", "STORY", "STORY VERSION", "REALITY", "MONTAGE",
        "SERIES OF SHOTS", "INTERCUT", "B&W", "BLACK AND WHITE", "SLOW MOTION", "CONTINUOUS",
        "CONT'D", "CONT’D", "CONTINUED", "LATER", "SAME", "MOS", "POV", "THE NEXT", "NEXT",
    )
)
# words that make a segment a time of day ("A FEW MINUTES LATER", "THE NEXT MORNING")
TIME_WORDS = frozenset(
    """DAY NIGHT MORNING AFTERNOON EVENING DAWN DUSK SUNSET SUNRISE TWILIGHT NOON MIDNIGHT MIDDAY
    MID-DAY NIGHTFALL DAYBREAK PRE-DAWN PREDAWN HOUR CONTINUOUS CONTINUED CONT'D CONT’D LATER SAME
    DAYTIME NIGHTTIME SUNUP SUNDOWN""".split()
)
TIME_FILLER_WORDS = frozenset(
    """A AN THE NEXT ANOTHER THAT THIS SAME TIME BIT FEW SECOND SECONDS MINUTE MINUTES MOMENT MOMENTS
    HOURS DAYS WEEKS MONTHS YEARS WEEK MONTH YEAR LATE EARLY PRESENT TO MAGIC SHORTLY AFTER BEFORE
    SOON ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN SEVERAL MID OF /""".split()
)
# words of a tag that places a scene in story time or in someone's head, not in a place
# ("BACK TO PRESENT", "DREAM SEQUENCE", "IN HER MEMORY", "TWO YEARS LATER", "YEARS AGO"); a
# heading part made only of these, TIME_WORDS and TIME_FILLER_WORDS names no place
STORY_TIME_WORDS = frozenset(
    """PRESENT PAST FUTURE FLASHBACK FLASHBACKS FLASH FORWARD FLASHFORWARD MEMORY MEMORIES
    REMEMBERED DREAM DREAMS DREAMING NIGHTMARE FANTASY FANTASIES DAYDREAM VISION VISIONS
    IMAGINATION IMAGINED IMAGINARY HALLUCINATION SEQUENCE REALITY LATER EARLIER AGO BEFORE AFTER
    RESUME RESUMING CONTINUOUS SAME TIME BACK NOW THEN MEANWHILE SIMULTANEOUS INTERCUT
    FLASHCUT""".split()
)
_INT_EXT = {"INT": "INT", "EXT": "EXT", "EST": "EST"}


def is_time_of_day(segment: str) -> bool:
    """Is a heading segment a time of day ("NIGHT", "A FEW MINUTES LATER", "DAY/NIGHT")?"""
    first = segment.split("/", 1)[0]
    words = first.upper().replace(".", " ").split()
    if not words:
        return False
    core = False
    for w in words:
        if w in TIME_WORDS:
            core = True
        elif w not in TIME_FILLER_WORDS:
            return False
    return core


def has_heading_prefix(text: str) -> bool:
    """Does the text open with INT./EXT./EST./I/E (split_heading would find an int_ext)?"""
    return _PREFIX.match(text) is not None


@functools.lru_cache(maxsize=64)
def _int_ext(prefix: str) -> str:
    """INT, EXT, EST or INT/EXT for the prefix as written ("int.", "I / E"); few distinct ones."""
    return _INT_EXT.get(_PREFIX_NOISE.sub("", prefix.upper()), "INT/EXT")


def _may_have_separator(text: str) -> bool:
    return "-" in text or "," in text or "–" in text or "—" in text


def split_heading(heading: str) -> tuple[str | None, str, str | None, list[str]]:
    """(int_ext, location, time_of_day, tags) of a scene heading's text (scene number removed)."""
    int_ext = None
    rest = heading
    m = _PREFIX.match(rest)
    if m is not None:
        int_ext = _int_ext(m.group("p"))
        rest = rest[m.end() :]
    tags: list[str] = []
    if "[" in rest:
        tags.extend(t.strip() for t in _BRACKETS.findall(rest) if t.strip())
        rest = _BRACKETS.sub(" ", rest)
    if "(" in rest:

        def _tag(pm: re.Match) -> str:
            inner = pm.group(1).strip()
            up = inner.upper()
            if up in TAG_PHRASES or _YEAR.search(up) or is_time_of_day(inner):
                tags.append(inner)
                return " "
            return pm.group(0)

        rest = _PARENS.sub(_tag, rest)
    rest = " ".join(rest.split())  # runs of whitespace as one space, none at the ends
    # peel time-of-day segments off the end ("HOUSE - DAY - CONTINUOUS"); every separator has a
    # dash or a comma, so a heading without one has none to look for
    times: list[str] = []
    cut = len(rest)
    seps = list(_SEPARATOR.finditer(rest)) if _may_have_separator(rest) else []
    for sm in reversed(seps):
        if sm.end() > cut:
            continue
        segment = rest[sm.end() : cut].strip()
        if not segment:
            cut = sm.start()
            continue
        if is_time_of_day(segment):
            times.append(segment)
            cut = sm.start()
        else:
            break
    location = rest[:cut].strip(" -,–—")
    if not times:
        # "INT HOUSE DAY": a last word that is a time of day, with no separator
        words = location.split(" ")
        if len(words) >= 2 and words[-1].upper() in TIME_WORDS:
            times.append(words[-1])
            location = " ".join(words[:-1]).strip(" -,–—")
    times.reverse()
    time_of_day = " - ".join(times) if times else None
    if time_of_day is not None:
        time_of_day = time_of_day.upper()
    return int_ext, location, time_of_day, tags


def assemble(title: list[dict], elements: list[dict], *, fmt: str) -> Screenplay:
    """Number the scenes, give every element its scene, and build the validated model."""
    scenes: list[dict] = []
    number = 0
    start = 0
    for i, el in enumerate(elements):
        if el["type"] == "scene_heading":
            if scenes:
                scenes[-1]["element_range"] = (scenes[-1]["element_range"][0], i)
            elif i > 0:
                scenes.append({"number": 0, "heading": "", "line": elements[0].get("line", 0),
                               "element_range": (0, i), "location": ""})
            number += 1
            start = i
            forced = bool(el.pop("forced", False))
            text = el["text"]
            int_ext, location, time_of_day, tags = split_heading(text)
            scene: dict = {
                "number": number,
                "heading": text,
                "int_ext": None if forced and int_ext is None else int_ext,
                "location": location,
                "time_of_day": time_of_day,
                "scene_number": el.get("scene_number"),
                "line": el.get("line", 0),
                "element_range": (i, i + 1),
                "forced": forced,
            }
            if tags:
                scene["tags"] = tags
            scenes.append(scene)
        el["scene"] = number
    if scenes:
        scenes[-1]["element_range"] = (start, len(elements))
    elif elements:
        scenes.append({"number": 0, "heading": "", "line": elements[0].get("line", 0),
                       "element_range": (0, len(elements)), "location": ""})
    from stage5cli.screenplay.model import Screenplay

    _to_elements(elements)
    return Screenplay.model_validate(
        {"title_page": title, "scenes": scenes, "elements": elements, "source": {"format": fmt}}
    )


_CHUNK = 4096


@functools.lru_cache(maxsize=1)
def _element_list():
    from pydantic import TypeAdapter

    from stage5cli.screenplay.model import Element

    return TypeAdapter(list[Element])


def _to_elements(elements: list) -> None:
    """The element dicts validated into Element instances in place, a chunk at a time, each
    dict let go as its element is made: a script of millions of short paragraphs never holds
    both forms of all of them (the model then takes the instances as they are)."""
    adapter = _element_list()
    for at in range(0, len(elements), _CHUNK):
        elements[at : at + _CHUNK] = adapter.validate_python(elements[at : at + _CHUNK])
