"""Printed pages and eighths of a page, from the standard screenplay page.

The rule (documented in the README, "Breakdown for scheduling"):

* A page is 55 lines of 12-point Courier (6 lines an inch; US Letter with 1-inch top and
  bottom margins and the page number line), 10 characters an inch.
* Each element is word-wrapped to its standard width: scene heading, action, centered text and
  transitions 60 characters (1.5" left and 1" right margin); character cue 38 (from 3.7");
  dialogue and lyrics 35 (2.5" to 6"); parenthetical 25 (3.1" to 5.6"). Dual dialogue is two
  columns (cue 28, dialogue 28, parenthetical 22): the taller column counts.
* One blank line before every element (scene headings included), except a parenthetical,
  dialogue or lyric inside a speech. Nothing blank at the top of a page.
* Pagination: a scene heading, cue, parenthetical or transition that does not fit moves to
  the next page, and so does a heading or cue left alone at the bottom (it takes the next
  element's first line with it); action and dialogue split between lines, dialogue adding
  "(MORE)" and a "(CONT'D)" cue (two lines). A forced page break starts a new page. Sections,
  synopses, notes and the title page are not printed.
* A scene starts at its heading's line (page * 55 + line) and ends where the next scene starts
  (the last one at its last line). Its length in eighths is lines * 8 / 55 rounded half up,
  at least 1/8: 55 lines are 8/8, 27 or 28 lines 4/8. Its page is the page its heading is on.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass

from stage5cli.screenplay.model import Element, Screenplay

LINES_PER_PAGE = 55
WIDTH = {"scene_heading": 60, "action": 60, "centered": 60, "transition": 60, "character": 38,
         "dialogue": 35, "lyrics": 35, "parenthetical": 25}
DUAL_WIDTH = {"character": 28, "dialogue": 28, "lyrics": 28, "parenthetical": 22}
SPEECH = ("parenthetical", "dialogue", "lyrics")
SPACE_BEFORE_HEADING = 1  # two make Big Fish 124 pages instead of 122 (printed: ~119)
_TAGS = re.compile(r"<[^>]+>")


@dataclass
class SceneLength:
    number: int
    page: int           # 1-based page of the heading
    start: int          # line position (page index * 55 + line on page)
    lines: int
    eighths: int


def _text(el: Element) -> str:
    if el.html is not None:
        return html.unescape(_TAGS.sub("", el.html.replace("<br>", "\n")))
    return el.text


def wrapped_lines(text: str, width: int) -> int:
    """Printed lines of a text at this width (word wrap; a blank line is still a line)."""
    n = 0
    for part in text.split("\n"):
        n += max(1, len(textwrap.wrap(part, width, break_long_words=True,
                                      break_on_hyphens=False)))
    return n


def _lines(el: Element, widths: dict[str, int]) -> int:
    if el.type == "transition":
        return 1
    return wrapped_lines(_text(el), widths.get(el.type, WIDTH.get(el.type, 60)))


@dataclass
class _Block:
    kind: str          # the first element's type
    lines: int
    space: int         # blank lines before it
    scene: int
    splittable: bool   # may break across pages between lines
    speech: bool       # dialogue: a break costs (MORE) + (CONT'D)


def _blocks(sp: Screenplay) -> list[_Block | None]:
    """Printed blocks in order (None is a forced page break)."""
    out: list[_Block | None] = []
    prev: str | None = None
    els = sp.elements
    i = 0
    while i < len(els):
        el = els[i]
        t = el.type
        if t == "page_break":
            out.append(None)
            prev = None
            i += 1
            continue
        if t not in WIDTH:
            i += 1
            continue
        if t == "character" and el.dual == "left":
            j = i
            sides: dict[str, int] = {"left": 0, "right": 0}
            side = "left"
            while j < len(els) and els[j].type in ("character", *SPEECH):
                e = els[j]
                if e.type == "character":
                    if e.dual is None or (e.dual == "left" and j > i):
                        break
                    side = e.dual
                sides[side] += _lines(e, DUAL_WIDTH)
                j += 1
            out.append(_Block("dual", max(sides.values()), 1 if prev else 0, el.scene, False, False))
            prev = "dialogue"
            i = j
            continue
        if prev is not None and t in SPEECH and prev in ("character", *SPEECH):
            space = 0
        elif t == "scene_heading":
            space = SPACE_BEFORE_HEADING if prev else 0
        else:
            space = 1 if prev else 0
        out.append(_Block(t, _lines(el, WIDTH), space, el.scene, t in ("action", "dialogue", "lyrics"),
                          t in ("dialogue", "lyrics")))
        prev = t
        i += 1
    return out


def paginate(sp: Screenplay) -> tuple[int, list[tuple[int, int]]]:
    """(pages, [(scene, position of its first line)]) for the script's printed blocks."""
    blocks = _blocks(sp)
    page, line = 0, 0
    starts: list[tuple[int, int]] = []
    last_scene: int | None = None
    printed = False

    def new_page() -> None:
        nonlocal page, line
        page += 1
        line = 0

    for k, b in enumerate(blocks):
        if b is None:
            if line:
                new_page()
            continue
        space = b.space if line else 0
        need = space + b.lines
        room = LINES_PER_PAGE - line
        if need > room:
            if b.splittable and room - space >= 2 and b.lines >= 3:
                first = room - space - (1 if b.speech else 0)  # (MORE) takes a line
                rest = b.lines - first + (1 if b.speech else 0)  # (CONT'D) cue
                if b.scene != last_scene:
                    starts.append((b.scene, page * LINES_PER_PAGE + line))
                    last_scene = b.scene
                new_page()
                while rest > LINES_PER_PAGE:
                    rest -= LINES_PER_PAGE
                    new_page()
                line = rest
                printed = True
                continue
            new_page()
            space = 0
        elif b.kind in ("scene_heading", "character") and k + 1 < len(blocks) \
                and blocks[k + 1] is not None and line + need + blocks[k + 1].space + 1 > LINES_PER_PAGE:
            new_page()  # never alone at the bottom of a page
            space = 0
        if b.scene != last_scene:
            starts.append((b.scene, page * LINES_PER_PAGE + line))
            last_scene = b.scene
        line += space + b.lines
        printed = True
        while line > LINES_PER_PAGE:  # a block taller than a page
            line -= LINES_PER_PAGE
            page += 1
    end = page * LINES_PER_PAGE + line
    pages = (page + (1 if line else 0)) if printed else 0
    return pages, [*starts, (-1, end)]


def eighths(lines: int) -> int:
    """Eighths of a page for a length in lines: rounded half up, at least 1."""
    return max(1, (lines * 16 + LINES_PER_PAGE) // (LINES_PER_PAGE * 2))


def scene_lengths(sp: Screenplay) -> list[SceneLength]:
    """Every scene that prints something: its page, position, length in lines and eighths."""
    _, starts = paginate(sp)
    out: list[SceneLength] = []
    for (scene, pos), (_, nxt) in zip(starts, starts[1:], strict=False):
        lines = max(0, nxt - pos)
        out.append(SceneLength(scene, pos // LINES_PER_PAGE + 1, pos, lines, eighths(lines)))
    return out


def page_count(sp: Screenplay) -> int:
    """Printed pages of the script body by this rule (the title page not counted)."""
    return paginate(sp)[0]


def format_eighths(n: int) -> str:
    """8 -> "1", 4 -> "4/8", 11 -> "1 3/8"."""
    whole, part = divmod(int(n), 8)
    if not part:
        return str(whole)
    return f"{whole} {part}/8" if whole else f"{part}/8"
