"""Plain text scripts: the Fountain rules with looser scene headings.

Looser means: a heading may lack the period (`INT HOUSE`), may carry scene numbers written
around it as typewritten scripts do (`12 INT. HOUSE - DAY 12`, `12A EXT. ROAD`), and may be
followed directly by text (no blank line needed after it). Headings must be upper case, so a
sentence such as "Est. 1990, the shop..." stays action.

A typed title block before the first heading (a title line, then "Written by ...") is read as
the title page when the file has no Fountain `Key: value` title page.
"""

from __future__ import annotations

import re

from stage5cli.screenplay.fountain import LOOSE_HEADING, parse_fountain
from stage5cli.screenplay.model import Screenplay

_CREDIT = re.compile(
    r"((?:original\s+)?(?:written|screenplay|teleplay|story|screen\s*story)\s+by|by)\s*:?\s*(.*)", re.I
)
_COPYRIGHT = re.compile(r"(?:\(c\)|©|copyright)", re.I)
_TITLE_KEY = re.compile(r"[^\s:][^:]{0,59}:.*")


def parse_plain(text: str) -> Screenplay:
    """Parse plain screenplay text (source.format "plain")."""
    return parse_fountain(_typed_title_page(text), loose=True)


def _typed_title_page(text: str) -> str:
    """Rewrite a typed title block as a Fountain title page, keeping every line number."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n", 40)
    head = lines[:40]
    first = next((i for i, ln in enumerate(head) if ln.strip()), None)
    if first is None or _TITLE_KEY.fullmatch(head[first]):
        return text
    # the block ends at the first heading; it holds short paragraphs only
    end = next((i for i, ln in enumerate(head)
                if ln.strip().upper() == ln.strip() and LOOSE_HEADING.fullmatch(ln.strip())), None)
    if end is None or end <= first or end - first > 15:
        return text
    block = [ln.strip() for ln in head[first:end]]
    if not block[0] or len(block[0]) > 80 or len(block) < 3 or block[1]:
        return text  # the title stands alone in its paragraph
    credit = next((k for k, ln in enumerate(block) if k >= 2 and ln and _CREDIT.fullmatch(ln)), None)
    if credit is None:
        return text
    m = _CREDIT.fullmatch(block[credit])
    if m.group(1).lower() == "by" and m.group(2):
        return text  # "By the river, ..." is a sentence, not a credit
    entries = [f"Title: {block[0]}", f"Credit: {m.group(1)}"]
    rest = [ln for ln in block[credit + 1 :] if ln]
    if m.group(2):
        entries.append(f"Author: {m.group(2)}")
    elif rest:
        entries.append(f"Author: {rest.pop(0)}")
    for ln in [ln for ln in block[2:credit] if ln] + rest:
        entries.append(f"{'Copyright' if _COPYRIGHT.match(ln) else 'Notes'}: {ln}")
    span = end - first
    if len(entries) >= span:  # no blank line left to end the title page on
        return text
    new_head = head[:first] + entries + [""] * (span - len(entries))
    return "\n".join(new_head + head[end:] + lines[40:])
