"""Final Draft (.fdx) files, read with defusedxml only (entity expansion and external entities
are refused, so an XML bomb fails at once with one line instead of eating memory).

FDX is XML: <FinalDraft><Content><Paragraph Type="Scene Heading" Number="12"><Text>...</Text>
... </Content><TitlePage><Content><Paragraph>...</Paragraph></Content></TitlePage></FinalDraft>.
A paragraph may hold several <Text> runs (joined) and a <DualDialogue> block holds the two
speeches of dual dialogue. `line` of an element is the 1-based position of its paragraph.

Breakdown tags (Final Draft's tagging, <TagData> after <Content>) are read into
`Screenplay.tags`: <TagCategory Id Name/>, <TagDefinition Id CatId Label/>, <Tag Number> holding
<DefId>s, and the tagged runs <Text TagNumber="N">. A run pointing to no <Tag>, a <Tag> pointing
to a missing definition and a <Tag> no text carries are ignored with a warning naming them
(`Screenplay.tag_warnings`); a definition whose category is missing keeps an empty category.
"""

from __future__ import annotations

import html as _html_lib

from stage5cli.errors import UsageError
from stage5cli.screenplay.fountain import parse_cue
from stage5cli.screenplay.model import Screenplay
from stage5cli.screenplay.scenes import assemble

_TYPES = {
    "scene heading": "scene_heading",
    "action": "action",
    "general": "action",
    "shot": "action",  # Final Draft does not number shots: they are not scenes
    "character": "character",
    "dialogue": "dialogue",
    "parenthetical": "parenthetical",
    "transition": "transition",
    "lyrics": "lyrics",
    "lyric": "lyrics",
    "new act": "section",
    "end of act": "section",
    "cast list": "action",
}
_STYLE_TAGS = (("bold", "b"), ("italic", "i"), ("underline", "u"))


def parse_fdx(data: bytes) -> Screenplay:
    """Parse Final Draft XML bytes into a Screenplay (source.format "fdx")."""
    root = _parse_xml(data)
    if _local(root.tag) != "FinalDraft":
        raise UsageError(f"not a Final Draft file: the XML root is <{_local(root.tag)}>, not <FinalDraft>")
    content = _child(root, "Content")
    elements: list[dict] = []
    counter = [0]
    tagged: list[tuple[int | None, list[tuple[str, int, int, str]]]] = []
    if content is not None:
        for para in _children(content, "Paragraph"):
            _paragraph(para, elements, counter, tagged=tagged)
    title: list[dict] = []
    tp = _child(root, "TitlePage")
    if tp is not None:
        title = _title_page(tp)
    sp = assemble(title, elements, fmt="fdx")
    tag_data = _child(root, "TagData")
    if tag_data is not None:
        from stage5cli.screenplay.fdx_tags import read_tags

        sp.tags, warnings = read_tags(tag_data, tagged, sp)
        sp.tag_warnings = warnings or None
    return sp


def _parse_xml(data: bytes):
    import defusedxml
    import defusedxml.ElementTree as DET
    from defusedxml.ElementTree import ParseError

    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise UsageError(f"refusing this FDX file: {type(exc).__name__} (entity declarations are not allowed)") from None
    except ParseError as exc:
        raise UsageError(f"not a valid Final Draft file: malformed XML ({exc})") from None
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise UsageError(f"not a valid Final Draft file: {type(exc).__name__}") from None


def _local(tag) -> str:
    tag = tag if isinstance(tag, str) else ""
    return tag.rsplit("}", 1)[-1]


def _child(el, name: str):
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el, name: str):
    return [c for c in el if _local(c.tag) == name]


def _runs(para) -> tuple[str, str | None]:
    """(text, html or None) of a paragraph's <Text> runs, joined."""
    parts: list[str] = []
    marked: list[str] = []
    styled = False
    for run in para:
        if _local(run.tag) != "Text":
            continue
        t = "".join(run.itertext())
        parts.append(t)
        style = (run.get("Style") or "").lower()
        esc = _html_lib.escape(t, quote=False)
        opened = [tag for word, tag in _STYLE_TAGS if word in style]
        if opened and t:
            styled = True
            esc = "".join(f"<{x}>" for x in opened) + esc + "".join(f"</{x}>" for x in reversed(opened))
        marked.append(esc)
    text = "".join(parts).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return text, ("".join(marked) if styled else None)


def _tag_runs(para) -> list[tuple[str, int, int, str]]:
    """(TagNumber, start, end, text) of the paragraph's tagged <Text> runs (raw offsets)."""
    found = []
    pos = 0
    for run in para:
        if _local(run.tag) != "Text":
            continue
        t = "".join(run.itertext())
        number = run.get("TagNumber")
        if number is not None:
            found.append((number.strip(), pos, pos + len(t), t))
        pos += len(t)
    return found


def _paragraph(para, out: list[dict], counter: list[int], dual: str | None = None,
               tagged: list | None = None) -> None:
    dd = _child(para, "DualDialogue")
    if dd is not None:
        side = "left"
        for inner in _children(dd, "Paragraph"):
            before = len(out)
            _paragraph(inner, out, counter, dual=side, tagged=tagged)
            if any(e["type"] == "character" for e in out[before:]):
                side = "right"
        return
    counter[0] += 1
    kind = (para.get("Type") or "Action").strip().lower()
    etype = _TYPES.get(kind, "action")
    text, marked = _runs(para)
    runs = _tag_runs(para) if tagged is not None else []
    if runs:
        tagged.append((None, runs))  # no element yet: filled in below when there is one
    if etype == "action" and (para.get("Alignment") or "").lower() == "center":
        etype = "centered"
    stripped = text.strip()
    if not stripped and etype != "action":
        return
    if etype == "action":
        text = "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))
        if not text.strip():
            return
    else:
        text = stripped
    el: dict
    if etype == "character":
        el = parse_cue(text, forced=True) or {"type": "character", "text": text, "name": text}
        el.pop("dual", None)
        if dual is not None and el["type"] == "character":
            el["dual"] = dual
    elif etype == "section":
        el = {"type": "section", "text": text, "depth": 1}
    else:
        el = {"type": etype, "text": text}
        if etype == "scene_heading":
            number = (para.get("Number") or "").strip()
            if number:
                el["scene_number"] = number
    if marked is not None and etype not in ("character", "section"):
        el["html"] = marked.strip()
    el["line"] = counter[0]
    out.append(el)
    if runs:
        tagged[-1] = (len(out) - 1, runs)


def _title_page(tp) -> list[dict]:
    """Title pages in FDX are free paragraphs; read them as Title, Credit, Author, then the rest."""
    content = _child(tp, "Content")
    if content is None:
        return []
    centered: list[str] = []
    other: list[str] = []
    for para in _children(content, "Paragraph"):
        text, _ = _runs(para)
        text = "\n".join(line.strip() for line in text.split("\n")).strip()
        if not text:
            continue
        align = (para.get("Alignment") or "").lower()
        (centered if align in ("center", "") else other).append(text)
    entries: list[dict] = []
    credit_words = ("written by", "by", "screenplay by", "teleplay by", "story by", "created by")
    i = 0
    if centered:
        entries.append({"key": "Title", "value": centered[0]})
        i = 1
    while i < len(centered):
        text = centered[i]
        if text.lower().rstrip(":") in credit_words and i + 1 < len(centered):
            entries.append({"key": "Credit", "value": text})
            entries.append({"key": "Author", "value": centered[i + 1]})
            i += 2
            continue
        entries.append({"key": "Notes", "value": text})
        i += 1
    if other:
        entries.append({"key": "Contact", "value": "\n".join(other)})
    return entries
