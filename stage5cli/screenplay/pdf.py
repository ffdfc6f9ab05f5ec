"""Screenplay PDFs (the `pdf` extra: pypdf).

A PDF has no structure, only text at positions. We take every text run with its position
(pypdf's `visitor_text`), rebuild the lines of each page, drop page furniture (page numbers,
running headers, (MORE), CONTINUED), and read each line's role from its indentation on the
standard screenplay layout: action and headings at the left margin, dialogue about 1" in,
parentheticals about 1.5", character cues about 2", transitions far right. The result is
written out as Fountain and read by the Fountain parser with plain-text headings
(`12 INT. HOUSE - DAY 12`). Positions come from the text matrices, not from pypdf's layout mode,
because layout mode re-aligns every page to its own leftmost text (a page of pure dialogue
would shift to the action margin).
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter

from stage5cli.errors import UsageError
from stage5cli.screenplay.fountain import LOOSE_HEADING, parse_cue, parse_fountain
from stage5cli.screenplay.model import Screenplay

NO_TEXT = "PDF has no extractable text (scanned?)"
_PAGE_NUMBER = re.compile(r"\(?\s*(?:page\s+)?\d+[A-Z]?\s*\.?\s*\)?(?:\s*of\s*\d+)?", re.I)
_FURNITURE = re.compile(
    r"\(\s*MORE\s*\)|\(?\s*CONTINUED\s*\)?\s*:?\s*(?:\(\s*\d+\s*\))?|CONT(?:'|’)D\s*:?|\*+", re.I
)
_SCENE_NUM = re.compile(r"[0-9]+(?:[A-Z]{1,2}[0-9]*)?\.?")
_HEADING = re.compile(r"(?:INT\.?/EXT|EXT\.?/INT|INT|EXT|EST|I/E|E/I)(?:[.\s/-]|$)")
_CREDIT = re.compile(r"(?:written\s+)?by|(?:screenplay|teleplay|story|written)\s+by", re.I)


def parse_pdf(data: bytes) -> Screenplay:
    """Parse screenplay PDF bytes (source.format "pdf")."""
    text = pdf_to_fountain(data)
    sp = parse_fountain(text, loose=True)
    sp.source.format = "pdf"
    return sp


def _reader(data: bytes):
    try:
        import pypdf
    except ImportError:
        raise UsageError(
            "reading PDF scripts needs pypdf: pip install 'stage5[pdf]'"
        ) from None
    from pypdf.errors import DependencyError, PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")  # owner-only protection opens with an empty password
            except DependencyError:
                raise UsageError(f"{NO_TEXT}: it is AES-encrypted and reading it needs "
                                 "'pip install cryptography'") from None
            except (PyPdfError, NotImplementedError):
                ok = 0
            if not ok:
                raise UsageError(f"{NO_TEXT}: it is password-protected; export an unprotected copy")
        return reader
    except UsageError:
        raise
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files
        raise UsageError(f"not a readable PDF ({type(exc).__name__})") from None


def _page_lines(page) -> tuple[list[dict], float]:
    """Lines of one page: [{x, end, y, text, size, num}] top to bottom; and the page width."""
    runs: list[tuple[float, float, str, float]] = []

    def visit(text, cm, tm, font_dict, font_size):
        if not text or not text.strip():
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        size = abs(font_size * (tm[3] or 1) * (cm[3] or 1)) or 12.0
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        if not 0.5 < size < 500:
            size = 12.0
        for k, part in enumerate(text.split("\n")):
            if part.strip():
                runs.append((x, y - k * size * 1.2, part, size))

    page.extract_text(visitor_text=visit)
    try:
        width = float(page.mediabox.width)
    except (AttributeError, TypeError, ValueError):
        width = 612.0
    runs.sort(key=lambda r: (-round(r[1] / 2.0), r[0]))
    lines: list[dict] = []
    for x, y, text, size in runs:
        char_w = size * 0.6
        if lines and abs(lines[-1]["y"] - y) <= size * 0.4:
            line = lines[-1]
            gap = x - line["end"]
            if gap > char_w * 0.5:
                line["chunks"].append((x, text))
            elif line["chunks"]:
                cx, ct = line["chunks"][-1]
                line["chunks"][-1] = (cx, ct + text)
            line["end"] = max(line["end"], x + len(text) * char_w)
        else:
            lines.append({"y": y, "size": size, "end": x + len(text) * char_w, "chunks": [(x, text)]})
    out = []
    for line in lines:
        chunks = line["chunks"]
        left_num = right_num = None
        # shooting scripts print scene numbers in both margins, on the heading's line
        if len(chunks) >= 2 and _SCENE_NUM.fullmatch(chunks[0][1].strip()):
            left_num = chunks[0][1].strip().rstrip(".")
            chunks = chunks[1:]
        if len(chunks) >= 2 and _SCENE_NUM.fullmatch(chunks[-1][1].strip()):
            right_num = chunks[-1][1].strip().rstrip(".")
            chunks = chunks[:-1]
        char_w = line["size"] * 0.6
        text = ""
        prev_end = None
        for x, t in chunks:
            if prev_end is not None:
                gap = (x - prev_end) / char_w
                text += " " * (1 if gap < 1.5 else min(round(gap), 120))
            text += t
            prev_end = x + len(t) * char_w
        out.append({"x": chunks[0][0], "end": prev_end, "y": line["y"], "size": line["size"],
                    "text": text.strip(), "num": left_num or right_num})
    return out, width


def pdf_to_fountain(data: bytes) -> str:
    """The PDF's text rebuilt as Fountain."""
    reader = _reader(data)
    pages: list[list[dict]] = []
    widths: list[float] = []
    try:
        for page in reader.pages:
            lines, width = _page_lines(page)
            pages.append(_strip_furniture(lines))
            widths.append(width)
    except UsageError:
        raise
    except Exception as exc:  # pypdf raises a wide range of errors on damaged files
        raise UsageError(f"not a readable PDF ({type(exc).__name__})") from None
    _strip_running_headers(pages)
    if not any(pages):
        raise UsageError(NO_TEXT)
    title: list[str] = []
    if len(pages) > 1 and _is_title_page(pages[0], widths[0]):
        title = _title_lines(pages[0], widths[0])
        pages = pages[1:]
    body = [line for page in pages for line in page]
    if not body:
        raise UsageError(NO_TEXT)
    return "\n".join(title + _to_fountain(body))


def _strip_furniture(lines: list[dict]) -> list[dict]:
    kept = []
    n = len(lines)
    for i, line in enumerate(lines):
        t = line["text"]
        if len(t) <= 40:  # furniture is short (and the patterns stay cheap)
            if _FURNITURE.fullmatch(t):
                continue
            if (i < 2 or i >= n - 2) and _PAGE_NUMBER.fullmatch(t):
                continue
        kept.append(line)
    return kept


def _strip_running_headers(pages: list[list[dict]]) -> None:
    """A first line repeated (digits aside) on most pages is a running header."""
    if len(pages) < 3:
        return
    firsts = Counter(re.sub(r"\d+", "#", p[0]["text"]) for p in pages if p)
    if not firsts:
        return
    text, count = firsts.most_common(1)[0]
    if count * 2 >= len(pages) and not _HEADING.match(text):
        for p in pages:
            if p and re.sub(r"\d+", "#", p[0]["text"]) == text:
                p.pop(0)


def _centered(line: dict, width: float) -> bool:
    return abs((line["x"] + line["end"]) / 2 - width / 2) < 36


def _is_title_page(lines: list[dict], width: float) -> bool:
    """A short first page, no scene heading, a good share of it centred."""
    if not lines or len(lines) > 25 or any(_HEADING.match(line["text"]) for line in lines):
        return False
    return sum(1 for line in lines if _centered(line, width)) * 3 >= len(lines)


def _title_lines(lines: list[dict], width: float) -> list[str]:
    """Title page lines as Fountain `Key: value` entries: centred blocks, then the contact."""
    centered = [ln for ln in lines if _centered(ln, width)]
    contact = [ln["text"] for ln in lines if ln not in centered]
    blocks: list[list[str]] = []
    prev_y = None
    for ln in centered:
        if prev_y is None or prev_y - ln["y"] > ln["size"] * 1.6:
            blocks.append([])
        blocks[-1].append(ln["text"])
        prev_y = ln["y"]
    entries: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if not entries:
            entries.append(("Title", block))
        elif _CREDIT.fullmatch(block[0].strip().rstrip(":")):
            entries.append(("Credit", block[:1]))
            rest = block[1:] or (blocks[i + 1] if i + 1 < len(blocks) else [])
            if not block[1:] and rest:
                i += 1
            if rest:
                entries.append(("Author", rest))
        else:
            entries.append(("Notes", block))
        i += 1
    if contact:
        entries.append(("Contact", contact))
    out: list[str] = []
    for key, values in entries:
        if len(values) == 1:
            out.append(f"{key}: {values[0]}")
        else:
            out.append(f"{key}:")
            out.extend(f"    {v}" for v in values)
    return out + [""]


def _left_margin(lines: list[dict]) -> float:
    """The action margin: the leftmost x used by more than one line (a stray line is no margin)."""
    bins = Counter(round(line["x"] / 3.0) * 3.0 for line in lines)
    candidates = [x for x, c in bins.items() if c >= 2]
    return min(candidates) if candidates else min(bins)


def _to_fountain(lines: list[dict]) -> list[str]:
    left = _left_margin(lines)
    out: list[str] = []
    state = "blank"  # what the last output line was: blank, action, cue, dialogue, paren
    prev_y = None
    prev_size = 12.0
    for line in lines:
        text = line["text"]
        size = line["size"] or 12.0
        rel = (line["x"] - left) / 72.0  # inches right of the action margin
        gap = prev_y is not None and (prev_y - line["y"]) > prev_size * 1.6
        new_page = prev_y is not None and line["y"] > prev_y + size
        prev_y, prev_size = line["y"], size
        if rel >= 3.0 and parse_cue(text) is None and not text.startswith("("):
            kind = "transition"
        elif rel >= 3.0 or (1.8 <= rel < 3.0 and not text.startswith("(")):
            kind = "cue" if parse_cue(text) is not None else ("dialogue" if rel < 3.0 else "transition")
        elif 0.5 <= rel < 3.0:
            kind = "paren" if text.startswith("(") else "dialogue"
        else:
            kind = "action"
        if kind == "cue" and state in ("cue", "paren") and text.startswith("("):
            kind = "paren"
        if kind in ("dialogue", "paren"):
            if state in ("cue", "dialogue", "paren"):
                if kind == "dialogue" and state == "paren" and not out[-1].endswith(")"):
                    out[-1] += " " + text  # a parenthetical wrapped onto a second line
                else:
                    out.append(text)
                state = kind
                continue
            kind = "action"
        if kind == "cue":
            _blank(out)
            out.append(text if parse_cue(text) is not None else "@" + text)
            state = "cue"
            continue
        if kind == "transition":
            _blank(out)
            out.append(text if text.endswith("TO:") and text.upper() == text else "> " + text)
            out.append("")
            state = "blank"
            continue
        # action column: a heading, or action
        if text.upper() == text and LOOSE_HEADING.fullmatch(text):
            _blank(out)
            out.append(f"{text} #{line['num']}#" if line["num"] else text)
            out.append("")
            state = "blank"
            continue
        if state != "action" or gap or new_page:
            _blank(out)
            if parse_cue(text) is not None or text[:1] in "!@.>~#=[(":
                text = "!" + text  # the layout says action: keep the Fountain rules from reading a cue
        out.append(text)
        state = "action"
    return out


def _blank(out: list[str]) -> None:
    if out and out[-1] != "":
        out.append("")
