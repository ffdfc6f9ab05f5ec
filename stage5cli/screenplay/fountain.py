"""Our Fountain parser (https://fountain.io/syntax, read as ../shared/conformance/README.md reads it).

One pass over the lines: boneyard out, title page, then paragraphs (runs of non-blank lines), each
cut into elements by the rules of the syntax page. Elements are built as plain dicts and validated
into the pydantic model once, at the end (`scenes.assemble`), which is what keeps it fast.

`loose=True` is the plain-text reading (`plain.py`): headings without a period or with scene numbers
written around them (`12 INT. HOUSE - DAY 12`), and a heading may be followed directly by text.
"""

from __future__ import annotations

import html as _html_lib
import re

from stage5cli.gcpause import collector_paused
from stage5cli.screenplay.model import Screenplay

# --- patterns (compiled once) -------------------------------------------------------------------

_NOTE_TOKEN = re.compile(r"\[\[|\]\]")
_NEWLINES = re.compile(r"\r\n?")
_TITLE_KEY = re.compile(r"([^\s:][^:]{0,59}):(.*)")
_HEADING = re.compile(r"(?:INT\.?/EXT|INT|EXT|EST|I/E)[.\s]", re.I)
LOOSE_HEADING = re.compile(
    r"(?:(?P<num>[0-9]+(?:[A-Z][0-9]*)?)\.?\s+)?"
    r"(?P<head>(?:INT\.?/EXT|EXT\.?/INT|INT|EXT|EST|I/E|E/I)(?:[.\s/-].*|$))",
    re.I,
)
_SCENE_NUMBER = re.compile(r"(?:[^\W_]|[.\-])+")
_PAGE_BREAK = re.compile(r"={3,}")
_EXTENSION = re.compile(r"\(([^()]*)\)")
_SECTION = re.compile(r"(#+)\s*(.*)")

# Emphasis, applied per line (markers never pair across a line break). The content of a span
# cannot run past the next marker of its kind, which keeps every pattern linear in the line.
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)((?:[^*\n]|\*(?!\*\*))+?)(?<=\S)\*\*\*")
_BOLD = re.compile(r"\*\*(?=\S)((?:[^*\n]|\*(?!\*))+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*")
_UNDERLINE = re.compile(r"_(?=\S)([^_\n]+?)(?<=\S)_")
_ESC_STAR, _ESC_UNDER, _ESC_BACKSLASH = "\ue000", "\ue001", "\ue002"

# element types that follow a cue inside one dialogue block
_IN_DIALOGUE = frozenset(("dialogue", "parenthetical", "lyrics"))


def parse_fountain(text: str, *, loose: bool = False) -> Screenplay:
    """Parse Fountain text into a Screenplay (source.format "fountain"; "plain" when loose)."""
    from stage5cli.screenplay.scenes import assemble

    with collector_paused():  # hundreds of thousands of containers, no cycles
        title, elements = parse_elements(text, loose=loose)
        return assemble(title, elements, fmt="plain" if loose else "fountain")


def parse_elements(text: str, *, loose: bool = False) -> tuple[list[dict], list[dict]]:
    """Return (title page entries, body elements) as plain dicts in the canonical reading."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = _NEWLINES.sub("\n", text)
    if "\t" in text:
        text = text.replace("\t", "    ")
    line_map: list[int] | None = None
    if "/*" in text:
        text, line_map = _strip_boneyard(text)
    lines = text.split("\n")
    title, start = _title_page(lines)
    parser = _Body(lines, line_map, loose)
    parser.run(start)
    return title, parser.out


# --- preprocessing ------------------------------------------------------------------------------


def _spans(text: str, start: str, end: str):
    """(start, end) offsets of each `start ... end` span, the first `end` closing; linear time."""
    pos = 0
    while True:
        a = text.find(start, pos)
        if a < 0:
            return
        b = text.find(end, a + len(start))
        if b < 0:
            return  # an unclosed span stays literal, and nothing after it can close
        yield a, b + len(end)
        pos = b + len(end)


def _strip_boneyard(text: str) -> tuple[str, list[int]]:
    """Cut /* ... */ out of the text; return it with the source line of every resulting line."""
    pieces: list[str] = []
    line_map = [1]
    orig = 1
    pos = 0
    for a, b in _spans(text, "/*", "*/"):
        kept = text[pos:a]
        pieces.append(kept)
        for _ in range(kept.count("\n")):
            orig += 1
            line_map.append(orig)
        orig += text.count("\n", a, b)
        pos = b
    kept = text[pos:]
    pieces.append(kept)
    for _ in range(kept.count("\n")):
        orig += 1
        line_map.append(orig)
    return "".join(pieces), line_map


def _title_page(lines: list[str]) -> tuple[list[dict], int]:
    """Read the title page at the top (after any blank lines); return (entries, first body line)."""
    n = len(lines)
    i = 0
    while i < n and not lines[i].strip():
        i += 1
    if i >= n:
        return [], 0
    first = lines[i]
    if _TITLE_KEY.fullmatch(first) is None or first[0] in "!@.>~#=[" or _HEADING.match(first):
        return [], 0  # "INT. OFFICE - 9:30 AM" is a heading, not a title key
    entries: list[tuple[str, list[str]]] = []  # key, value lines
    j = i
    while j < n:
        line = lines[j]
        if not line.strip():
            break
        if entries and line.startswith("   "):
            entries[-1][1].append(line.strip())
            j += 1
            continue
        m = _TITLE_KEY.fullmatch(line)
        if m is None:
            break
        value = m.group(2).strip()
        entries.append((m.group(1).strip(), [value] if value else []))
        j += 1
    # a lone "KEY:" line with no value (FADE IN:, CUT TO:) is body text, not a title page
    if len(entries) == 1 and not entries[0][1] and j == i + 1:
        return [], 0
    return [{"key": key, "value": "\n".join(values)} for key, values in entries], j


# --- cues and emphasis --------------------------------------------------------------------------


def parse_cue(s: str, *, forced: bool = False) -> dict | None:
    """Read a character cue (already stripped; without `@` when forced). None if it is not one."""
    dual = None
    if s.endswith("^"):
        s = s[:-1].rstrip()
        dual = "right"
    if not s:
        return None
    p = s.find("(")
    name = (s[:p] if p >= 0 else s).strip()
    if not forced:
        if not name or name.upper() != name or name.lower() == name:
            return None
        if p >= 0:  # outside its (extensions) the whole cue is upper case
            rest = _EXTENSION.sub("", s[p:])
            if rest.upper() != rest:
                return None
    cue: dict = {"type": "character", "text": s, "name": name}
    if p >= 0:
        exts = [e.strip() for e in _EXTENSION.findall(s, p)]
        if exts:
            cue["extensions"] = exts
    if dual:
        cue["dual"] = dual
    return cue


def _is_cue_line(s: str) -> bool:
    if s[0] == "@":
        return len(s) > 1 and s[1:].strip() not in ("", "^")
    if s[0] in "!.>~#=[(":
        return False
    return parse_cue(s) is not None


def render_html(text: str) -> str:
    """Render Fountain emphasis as <b>/<i>/<u> with escapes resolved (and &, <, > escaped)."""
    t = text
    escaped = "\\" in t
    if escaped:
        t = t.replace("\\\\", _ESC_BACKSLASH).replace("\\*", _ESC_STAR).replace("\\_", _ESC_UNDER)
    t = _html_lib.escape(t, quote=False)
    if "*" in t:
        if "***" in t:
            t = _BOLD_ITALIC.sub(r"<b><i>\1</i></b>", t)
        if "**" in t:
            t = _BOLD.sub(r"<b>\1</b>", t)
        if "*" in t:
            t = _ITALIC.sub(r"<i>\1</i>", t)
    if "_" in t:
        t = _UNDERLINE.sub(r"<u>\1</u>", t)
    if escaped:
        t = t.replace(_ESC_STAR, "*").replace(_ESC_UNDER, "_").replace(_ESC_BACKSLASH, "\\")
    return t


def _with_html(el: dict) -> dict:
    t = el["text"]
    if "*" in t or "_" in t or "\\" in t:
        el["html"] = render_html(t)
    return el


def _note_text(raw: str) -> str:
    lines = [ln.strip() for ln in raw.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# --- the body -----------------------------------------------------------------------------------


class _Body:
    """State of one pass over the body lines (the output list and the line map)."""

    def __init__(self, lines: list[str], line_map: list[int] | None, loose: bool):
        self.lines = lines
        self.line_map = line_map
        self.loose = loose
        self.out: list[dict] = []

    def lineno(self, i: int) -> int:
        return self.line_map[i] if self.line_map is not None else i + 1

    def run(self, start: int) -> None:
        lines = self.lines
        n = len(lines)
        i = start
        while i < n:
            first = lines[i]
            s = first.strip()
            if not s:
                i += 1
                continue
            para = [i]
            note_open = "[[" in first and _note_open(first, False)
            cue_para: bool | None = None
            j = i + 1
            while j < n:
                line = lines[j]
                if line.strip():
                    para.append(j)
                    if "[[" in line or "]]" in line:
                        note_open = _note_open(line, note_open)
                    j += 1
                    continue
                if not line:  # a truly empty line always ends the paragraph
                    break
                # whitespace-only: kept inside an open [[note]] or a dialogue block
                if note_open:
                    para.append(j)
                    j += 1
                    continue
                if j + 1 < n and lines[j + 1].strip() and len(para) >= 2:
                    if cue_para is None:
                        cue_para = _is_cue_line(s)
                    if cue_para:
                        para.append(j)
                        j += 1
                        continue
                break
            self.paragraph(para)
            i = j

    # one paragraph --------------------------------------------------------------------------

    def paragraph(self, idx: list[int]) -> None:
        lines = self.lines
        texts = [lines[k] for k in idx]
        notes_at: dict[int, list[tuple[str, int]]] | None = None
        for t in texts:
            if "[[" in t:
                texts, idx, notes_at = _cut_notes(texts, idx)
                break
        if notes_at is not None:
            if not any(t.strip() for t in texts):
                for k in sorted(notes_at):
                    for note, src in notes_at[k]:
                        self.out.append({"type": "note", "text": note, "line": self.lineno(src)})
                return
        self.classify(texts, idx, notes_at)

    def classify(self, texts: list[str], idx: list[int], notes_at: dict | None) -> None:
        """Cut one paragraph into elements.

        `#` sections, `=` synopses / `===` page breaks and `~` lyrics are read per line, wherever
        they stand. Any other line that starts the paragraph (or follows one of those) is read
        with the blank-line rules: a heading or a transition must be the last line (blank after),
        a cue must not be (its dialogue follows); a forced `!`, `@`, `>`, `.` decides at once.
        Everything else is action, which runs to the next per-line element.
        """
        m = len(texts)
        k = 0
        while k < m:
            raw = texts[k]
            s = raw.strip()
            if not s:
                k += 1
                continue
            c = s[0]
            ln = self.lineno(idx[k])
            # per-line elements, wherever they stand in the paragraph
            if c == "#":
                sm = _SECTION.fullmatch(s)
                el = {"type": "section", "depth": len(sm.group(1)), "text": sm.group(2).strip()}
                self.emit(el, ln, notes_at, k, k)
                k += 1
                continue
            if c == "=":
                if _PAGE_BREAK.fullmatch(s):
                    self.emit({"type": "page_break", "text": ""}, ln, notes_at, k, k)
                else:
                    self.emit({"type": "synopsis", "text": s[1:].strip()}, ln, notes_at, k, k)
                k += 1
                continue
            if c == "~":
                k = self.lyrics(texts, idx, notes_at, k)
                continue
            last = k == m - 1
            if c == "!":
                k = self.action(texts, idx, notes_at, k)
                continue
            if c == "@":
                if k + 1 < m and _is_cue_line(s):
                    k = self.dialogue(texts, idx, notes_at, k, parse_cue(s[1:].strip(), forced=True))
                else:
                    k = self.action(texts, idx, notes_at, k)
                continue
            if c == ">":
                if len(s) >= 2 and s[-1] == "<":
                    j = k
                    parts = []
                    while j < m:
                        t = texts[j].strip()
                        if len(t) >= 2 and t[0] == ">" and t[-1] == "<":
                            parts.append(t[1:-1].strip())
                            j += 1
                        else:
                            break
                    el = {"type": "centered", "text": "\n".join(parts)}
                    self.emit(_with_html(el), ln, notes_at, k, j - 1)
                    k = j
                else:
                    self.emit(_with_html({"type": "transition", "text": s[1:].strip()}), ln, notes_at, k, k)
                    k += 1
                continue
            if c == "." and len(s) > 1 and s[1] != "." and s[1] != " ":
                if last or self.loose:
                    self.heading(s[1:], ln, notes_at, k, forced=True)
                    k += 1
                else:
                    k = self.action(texts, idx, notes_at, k)
                continue
            if self.loose:
                lm = LOOSE_HEADING.fullmatch(s)
                if lm is not None and _loose_heading_ok(lm.group("head")):
                    self.loose_heading(lm, ln, notes_at, k)
                    k += 1
                    continue
            elif last and _HEADING.match(s) is not None:
                self.heading(s, ln, notes_at, k, forced=False)
                k += 1
                continue
            if last:
                if raw.endswith("TO:") and s.upper() == s:
                    self.emit(_with_html({"type": "transition", "text": s}), ln, notes_at, k, k)
                    k += 1
                    continue
            elif c not in "([":
                cue = parse_cue(s)
                if cue is not None:
                    k = self.dialogue(texts, idx, notes_at, k, cue)
                    continue
            k = self.action(texts, idx, notes_at, k)

    # element builders -----------------------------------------------------------------------

    def emit(self, el: dict, ln: int, notes_at: dict | None, k0: int, k1: int) -> None:
        el["line"] = ln
        if notes_at:
            notes = [n for k in range(k0, k1 + 1) for n, _ in notes_at.get(k, ())]
            if notes:
                el["notes"] = notes
        self.out.append(el)

    def heading(self, s: str, ln: int, notes_at: dict | None, k: int, *, forced: bool) -> None:
        el: dict = {"type": "scene_heading", "text": s.strip()}
        text, number = _scene_number(s)
        if number is not None:
            el["text"] = text
            el["scene_number"] = number
        if forced:
            el["forced"] = True
        self.emit(_with_html(el), ln, notes_at, k, k)

    def loose_heading(self, lm: re.Match, ln: int, notes_at: dict | None, k: int) -> None:
        head = lm.group("head").strip()
        number = lm.group("num")
        el: dict = {"type": "scene_heading", "text": head}
        text, hashed = _scene_number(head)
        if hashed is not None:
            el["text"] = text
            el["scene_number"] = hashed
        elif number:
            rest, _, last = head.rpartition(" ")
            if last.rstrip(".").upper() == number.upper() and rest.strip():
                el["text"] = rest.strip()  # "12 INT. HOUSE - DAY 12": the number on both sides
            el["scene_number"] = number
        self.emit(_with_html(el), ln, notes_at, k, k)

    def action(self, texts: list[str], idx: list[int], notes_at: dict | None, k: int) -> int:
        """An action run from line k to the next per-line element or the end of the paragraph."""
        m = len(texts)
        j = k
        parts = []
        while j < m:
            raw = texts[j].rstrip()
            s = raw.lstrip()
            if j > k and s and s[0] in "#=~":
                break
            if s.startswith("!"):
                raw = raw.replace("!", "", 1)
            parts.append(raw)
            j += 1
        el = {"type": "action", "text": "\n".join(parts)}
        self.emit(_with_html(el), self.lineno(idx[k]), notes_at, k, j - 1)
        return j

    def lyrics(self, texts: list[str], idx: list[int], notes_at: dict | None, k: int) -> int:
        m = len(texts)
        j = k
        parts = []
        while j < m:
            s = texts[j].strip()
            if not s.startswith("~"):
                break
            parts.append(s[1:].strip())
            j += 1
        el = {"type": "lyrics", "text": "\n".join(parts)}
        self.emit(_with_html(el), self.lineno(idx[k]), notes_at, k, j - 1)
        return j

    def dialogue(self, texts: list[str], idx: list[int], notes_at: dict | None, k: int, cue: dict) -> int:
        """The cue at line k and everything after it in the paragraph: parentheticals, dialogue, lyrics."""
        out = self.out
        if cue.get("dual") == "right":
            for prev in reversed(out):
                t = prev["type"]
                if t in _IN_DIALOGUE:
                    continue
                if t == "character" and "dual" not in prev:
                    prev["dual"] = "left"
                break
        self.emit(cue, self.lineno(idx[k]), notes_at, k, k)
        m = len(texts)
        j = k + 1
        prev_type = "character"
        while j < m:
            s = texts[j].strip()
            ln = self.lineno(idx[j])
            if s.startswith("~"):
                j = self.lyrics(texts, idx, notes_at, j)
                prev_type = "lyrics"
                continue
            if s.startswith("(") and s.endswith(")") and prev_type != "parenthetical":
                self.emit(_with_html({"type": "parenthetical", "text": s}), ln, notes_at, j, j)
                prev_type = "parenthetical"
                j += 1
                continue
            start = j
            parts = [s]
            j += 1
            while j < m:
                t = texts[j].strip()
                if t.startswith("~") or (t.startswith("(") and t.endswith(")")):
                    break
                parts.append(t)
                j += 1
            el = {"type": "dialogue", "text": "\n".join(parts)}
            self.emit(_with_html(el), ln, notes_at, start, j - 1)
            prev_type = "dialogue"
        return m


def _scene_number(s: str) -> tuple[str, str | None]:
    """Split a trailing `#12A#` scene number off a heading: (text, number or None)."""
    s = s.strip()
    if len(s) < 3 or s[-1] != "#":
        return s, None
    a = s.rfind("#", 0, len(s) - 1)
    if a < 0 or not _SCENE_NUMBER.fullmatch(s, a + 1, len(s) - 1):
        return s, None
    return s[:a].strip(), s[a + 1 : -1]


def _note_open(line: str, is_open: bool) -> bool:
    for tok in _NOTE_TOKEN.findall(line):
        is_open = tok == "[["
    return is_open


def _loose_heading_ok(head: str) -> bool:
    """In plain text a heading is upper case and short (so "Est. 1990, the shop..." stays action)."""
    return len(head) <= 120 and head.upper() == head


def _cut_notes(texts: list[str], idx: list[int]) -> tuple[list[str], list[int], dict[int, list]]:
    """Cut [[notes]] out of a paragraph; return new lines, their line indexes, and per new line
    the notes cut from it as (text, index of the line where the note starts)."""
    joined = "\n".join(texts)
    out_idx = [idx[0]]
    notes_at: dict[int, list[tuple[str, int]]] = {}
    pieces: list[str] = []
    pos = 0
    in_line = 0
    out_line = 0
    for a, b in _spans(joined, "[[", "]]"):
        kept = joined[pos:a]
        pieces.append(kept)
        for _ in range(kept.count("\n")):
            in_line += 1
            out_line += 1
            out_idx.append(idx[in_line])
        notes_at.setdefault(out_line, []).append((_note_text(joined[a + 2 : b - 2]), idx[in_line]))
        in_line += joined.count("\n", a, b)
        pos = b
    kept = joined[pos:]
    pieces.append(kept)
    for _ in range(kept.count("\n")):
        in_line += 1
        out_idx.append(idx[in_line])
    new_texts = "".join(pieces).split("\n")
    if not notes_at:
        return new_texts, out_idx, notes_at
    # a line left blank by cutting its note goes; its notes move to the next line (or the last)
    keep_texts: list[str] = []
    keep_idx: list[int] = []
    keep_notes: dict[int, list[tuple[str, int]]] = {}
    pending: list[tuple[str, int]] = []
    for k, t in enumerate(new_texts):
        here = notes_at.get(k)
        if here and not t.strip():
            pending.extend(here)
            continue
        notes = pending + (here or [])
        pending = []
        if notes:
            keep_notes[len(keep_texts)] = notes
        keep_texts.append(t)
        keep_idx.append(out_idx[k])
    if pending:
        if keep_texts:
            keep_notes.setdefault(len(keep_texts) - 1, []).extend(pending)
        else:
            keep_texts.append("")
            keep_idx.append(out_idx[0])
            keep_notes[0] = pending
    return keep_texts, keep_idx, keep_notes
