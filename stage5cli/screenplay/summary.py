"""A short summary of a parsed script: what `stage5 parse` prints."""

from __future__ import annotations

import html
import re

from stage5cli.screenplay.model import Screenplay

LINES_PER_PAGE = 55
# printed width in characters (Courier 12, standard margins) and blank lines before the element
_WIDTH = {
    "action": 61, "centered": 61, "scene_heading": 61, "transition": 61, "dialogue": 35,
    "lyrics": 35, "parenthetical": 26, "character": 38,
}
_TAGS = re.compile(r"</?[biu]>")
_CONTD = re.compile(r"\s*\(?\s*CONT(?:'|’)?D\.?\s*\)?\s*$|\s*\(?\s*CONTINUED\s*\)?\s*$", re.I)


def plain_text(text: str) -> str:
    """Text without Fountain emphasis markers (escapes resolved)."""
    from stage5cli.screenplay.fountain import render_html

    return html.unescape(_TAGS.sub("", render_html(text)))


def character_name(name: str) -> str:
    """The speaking character a cue name stands for: CONT'D and spacing gone."""
    name = _CONTD.sub("", name or "")
    return " ".join(name.split())


def speaking_characters(sp: Screenplay) -> list[dict]:
    """[{name, lines}] with lines = number of speeches (cues), most first, then by name."""
    counts: dict[str, int] = {}
    spelling: dict[str, str] = {}
    for el in sp.elements:
        if el.type != "character":
            continue
        name = character_name(el.name if el.name is not None else el.text)
        if not name:
            continue
        key = name.casefold()
        counts[key] = counts.get(key, 0) + 1
        spelling.setdefault(key, name)
    ranked = sorted(counts, key=lambda k: (-counts[k], spelling[k]))
    return [{"name": spelling[k], "lines": counts[k]} for k in ranked]


def pages_estimate(sp: Screenplay) -> int:
    """Printed pages at ~55 lines a page, wrapping each element to its usual width."""
    if not sp.elements:
        return 0
    pages = 0
    lines = 0
    prev = None
    for el in sp.elements:
        t = el.type
        if t == "page_break":
            if lines:
                pages += 1
                lines = 0
            continue
        width = _WIDTH.get(t)
        if width is None:  # sections, synopses, notes are not printed
            continue
        if lines and not (prev in ("character", "parenthetical", "dialogue", "lyrics")
                          and t in ("parenthetical", "dialogue", "lyrics")):
            lines += 2 if t == "scene_heading" else 1
        for part in el.text.split("\n"):
            lines += max(1, -(-len(part) // width))
        prev = t
        while lines > LINES_PER_PAGE:
            pages += 1
            lines -= LINES_PER_PAGE
    return pages + (1 if lines else 0)


def summarize(sp: Screenplay) -> dict:
    """title, format, scenes (headings), characters, pages_estimate, warnings."""
    title = sp.title
    headings = sum(1 for s in sp.scenes if s.number > 0)
    characters = speaking_characters(sp)
    warnings: list[str] = []
    if not sp.elements:
        warnings.append("the script has no body text")
    elif headings == 0:
        warnings.append("no scene headings: everything is scene 0")
    if sp.elements and not characters:
        warnings.append("no character cues: no dialogue was recognised")
    if title is None and sp.source.format in ("fountain", "plain", "fdx"):
        warnings.append("no title on a title page")
    warnings.extend(f"FDX tags: {w}" for w in sp.tag_warnings or [])
    return {
        "title": plain_text(title) if title else None,
        "format": sp.source.format,
        "scenes": headings,
        "characters": characters,
        "pages_estimate": pages_estimate(sp),
        "warnings": warnings,
    }
