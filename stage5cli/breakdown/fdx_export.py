"""`export --format fdx`: the script as a Final Draft file with the breakdown as TagData.

From an .fdx script, the original XML is kept: every paragraph, its attributes, type and text
are unchanged; its <Text> runs are only split where a tag starts or ends, the tagged piece
gains TagNumber="N" (a piece copies its run's attributes), old TagNumbers and the old
<TagData> are replaced by ours. From any other format the script is written as FDX paragraphs
(Scene Heading, Action, Character, Parenthetical, Dialogue, Lyrics, Transition; centered text
is Action with Alignment="Center"; dual dialogue in <DualDialogue>; bold/italic/underline as
Style), plus a title page. Sections, synopses and notes are not written (Final Draft prints
every paragraph).

TagData (the layout Final Draft's tagging writes, as in Beat's FDX export):
<TagCategories> one <TagCategory> per Final Draft category of categories.CATEGORIES (fixed ids);
<TagDefinitions> one <TagDefinition Id CatId Label Number> per asset with a mention (its id is
derived from the project and the asset, so it is the same on every export); <Tags> one
<Tag Number><DefId>… per distinct set of definitions on one piece of text; and in the text every
occurrence of an asset's name, alias or mention text in a scene it is mentioned in.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET  # writing only; files are parsed with defusedxml
from pathlib import Path
from typing import Any

from stage5cli.project import Project
from stage5cli.screenplay.model import Element, Screenplay

from .categories import CATEGORIES, by_id

_NS = uuid.UUID("0d6c3b8e-7f4a-4e0e-a8f2-3c1b9d5e7a21")
FDX_VERSION = "1"
_PARA_TYPE = {"scene_heading": "Scene Heading", "action": "Action", "centered": "Action",
              "character": "Character", "parenthetical": "Parenthetical", "dialogue": "Dialogue",
              "lyrics": "Lyrics", "transition": "Transition"}
_GENERIC = frozenset("i me you he him his she her hers it its we us they them their this that "
                     "there here the a an".split())
_STYLE = {"b": "Bold", "i": "Italic", "u": "Underline"}
_HTML_TAG = re.compile(r"(</?[a-z]+>)")


class Registry:
    """Tag definitions (one per asset with a mention) and tag numbers (one per set of them)."""

    def __init__(self, assets: list[dict[str, Any]], project_uid: str) -> None:
        self.assets = [a for a in assets if a["scenes"] and not a.get("stale")]
        self.def_id = {a["id"]: str(uuid.uuid5(_NS, f"{project_uid}:{a['id']}")) for a in self.assets}
        self.tag_numbers: dict[tuple[str, ...], int] = {}
        self.patterns: dict[int, re.Pattern | None] = {a["id"]: _pattern(a) for a in self.assets}
        self.in_scene: dict[int, list[dict]] = {}
        for a in self.assets:
            for n in a["scenes"]:
                self.in_scene.setdefault(n, []).append(a)

    def number(self, def_ids: tuple[str, ...]) -> int:
        if def_ids not in self.tag_numbers:
            self.tag_numbers[def_ids] = len(self.tag_numbers) + 1
        return self.tag_numbers[def_ids]

    def spans(self, text: str, scene: int) -> list[tuple[int, int, int]]:
        """(start, end, TagNumber) of every tagged piece of `text`, in order, not overlapping."""
        found: dict[tuple[int, int], list[str]] = {}
        for a in self.in_scene.get(scene, []):
            rx = self.patterns[a["id"]]
            if rx is None:
                continue
            for m in rx.finditer(text):
                ids = found.setdefault((m.start(), m.end()), [])
                if self.def_id[a["id"]] not in ids:
                    ids.append(self.def_id[a["id"]])
        taken: list[tuple[int, int, int]] = []
        for (s, e), ids in sorted(found.items(), key=lambda kv: (kv[0][0] - kv[0][1], kv[0][0])):
            if any(s < te and ts < e for ts, te, _ in taken):
                continue
            taken.append((s, e, self.number(tuple(sorted(ids)))))
        return sorted(taken)

    def tag_data(self) -> ET.Element:
        root = ET.Element("TagData")
        cats = ET.SubElement(root, "TagCategories")
        seen: set[str] = set()
        for c in CATEGORIES:
            if c.fd_id in seen:
                continue
            seen.add(c.fd_id)
            ET.SubElement(cats, "TagCategory", {"Color": c.fd_colour, "Id": c.fd_id,
                                                "Name": c.fd_name, "Number": str(c.fd_number),
                                                "Style": "Bold"})
        defs = ET.SubElement(root, "TagDefinitions")
        for i, a in enumerate(self.assets, start=1):
            ET.SubElement(defs, "TagDefinition", {"CatId": by_id(a["category"]).fd_id,
                                                  "Id": self.def_id[a["id"]], "Label": a["name"],
                                                  "Number": str(i)})
        tags = ET.SubElement(root, "Tags")
        for ids, number in sorted(self.tag_numbers.items(), key=lambda kv: kv[1]):
            tag = ET.SubElement(tags, "Tag", {"Number": str(number)})
            for did in ids:
                ET.SubElement(tag, "DefId").text = did
        return root


def _pattern(asset: dict[str, Any]) -> re.Pattern | None:
    words = {asset["name"], *asset.get("aliases", []), *(t for _, t in asset.get("mentions", []))}
    spellings = sorted({" ".join(w.split()) for w in words
                        if w and len(w.strip()) > 1 and w.strip().lower() not in _GENERIC},
                       key=len, reverse=True)
    if not spellings:
        return None
    alt = "|".join(re.escape(s).replace(r"\ ", r"\s+") for s in spellings)
    return re.compile(rf"(?<![\w])(?:{alt})(?![\w])", re.I)


# ---- splitting runs --------------------------------------------------------------------------


def _split_runs(para: ET.Element, spans: list[tuple[int, int, int]]) -> None:
    """Split the paragraph's <Text> children at span edges; tagged pieces get TagNumber."""
    if not spans:
        return
    pos = 0
    children = list(para)
    new_children: list[ET.Element] = []
    for child in children:
        if child.tag.rsplit("}", 1)[-1] != "Text":
            new_children.append(child)
            continue
        text = "".join(child.itertext())
        start, end = pos, pos + len(text)
        pos = end
        inside = [(max(s, start), min(e, end), n) for s, e, n in spans if s < end and start < e]
        if not inside or len(child):  # untouched, or a run with markup inside: kept whole
            new_children.append(child)
            continue
        cuts: list[tuple[int, int, int | None]] = []
        at = start
        for s, e, n in inside:
            if s > at:
                cuts.append((at, s, None))
            cuts.append((s, e, n))
            at = e
        if at < end:
            cuts.append((at, end, None))
        for k, (s, e, n) in enumerate(cuts):
            piece = ET.Element(child.tag, dict(child.attrib))
            piece.text = text[s - start:e - start]
            if n is not None:
                piece.set("TagNumber", str(n))
            piece.tail = child.tail if k == len(cuts) - 1 else None
            new_children.append(piece)
    for child in children:
        para.remove(child)
    para.extend(new_children)


def _local(tag: Any) -> str:
    return (tag if isinstance(tag, str) else "").rsplit("}", 1)[-1]


def tag_fdx(data: bytes, registry: Registry) -> str:
    """An FDX file's XML with our tags: paragraphs, attributes and text unchanged."""
    from stage5cli.screenplay.fdx import _parse_xml

    root = _parse_xml(data)
    for old in [c for c in root if _local(c.tag) == "TagData"]:
        root.remove(old)
    for run in root.iter():
        if _local(run.tag) == "Text" and "TagNumber" in run.attrib:
            del run.attrib["TagNumber"]
    content = next((c for c in root if _local(c.tag) == "Content"), None)
    scene = 0

    def walk(para: ET.Element) -> None:
        nonlocal scene
        dd = next((c for c in para if _local(c.tag) == "DualDialogue"), None)
        if dd is not None:
            for inner in dd:
                if _local(inner.tag) == "Paragraph":
                    walk(inner)
            return
        raw = "".join("".join(r.itertext()) for r in para if _local(r.tag) == "Text")
        if not raw.strip():
            return
        if (para.get("Type") or "").strip().lower() == "scene heading":
            scene += 1
        _split_runs(para, registry.spans(raw, scene))

    if content is not None:
        for para in content:
            if _local(para.tag) == "Paragraph":
                walk(para)
    tag_data = registry.tag_data()
    tag_data.tail = "\n"
    root.append(tag_data)
    ET.indent(tag_data, space="  ", level=1)
    return _serialize(root)


def _serialize(root: ET.Element) -> str:
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n' + body + "\n"


# ---- writing a script as FDX -----------------------------------------------------------------


def _styled_runs(el: Element) -> list[tuple[str, str]]:
    """(text, Style) runs of an element from its rendered emphasis."""
    if el.html is None:
        return [(el.text, "")]
    import html as html_lib

    runs: list[tuple[str, str]] = []
    open_: list[str] = []
    for part in _HTML_TAG.split(el.html):
        m = re.fullmatch(r"<(/?)([a-z]+)>", part)
        if m:
            name = m.group(2)
            if name in _STYLE:
                if m.group(1):
                    if name in open_:
                        open_.remove(name)
                else:
                    open_.append(name)
            continue
        if part:
            style = "+".join(_STYLE[n] for n in ("b", "i", "u") if n in open_)
            runs.append((html_lib.unescape(part), style))
    return runs or [("", "")]


def _paragraph(el: Element, registry: Registry, new_page: bool) -> ET.Element:
    attrs = {"Type": _PARA_TYPE[el.type]}
    if el.type == "centered":
        attrs["Alignment"] = "Center"
    if el.type == "scene_heading" and el.scene_number:
        attrs["Number"] = el.scene_number
    if new_page:
        attrs["StartsNewPage"] = "Yes"
    para = ET.Element("Paragraph", attrs)
    for text, style in _styled_runs(el):
        run = ET.SubElement(para, "Text", {"Style": style} if style else {})
        run.text = text
    plain = "".join(t for t, _ in _styled_runs(el))
    _split_runs(para, registry.spans(plain, el.scene))
    return para


def write_fdx(sp: Screenplay, registry: Registry) -> str:
    root = ET.Element("FinalDraft", {"DocumentType": "Script", "Template": "No",
                                     "Version": FDX_VERSION})
    content = ET.SubElement(root, "Content")
    new_page = False
    dual: ET.Element | None = None
    for el in sp.elements:
        if el.type == "page_break":
            new_page = True
            continue
        if el.type not in _PARA_TYPE:
            continue
        if el.type == "character" and el.dual == "left":
            holder = ET.SubElement(content, "Paragraph")
            dual = ET.SubElement(holder, "DualDialogue")
        elif dual is not None and not (el.type in ("parenthetical", "dialogue", "lyrics")
                                       or (el.type == "character" and el.dual == "right")):
            dual = None
        para = _paragraph(el, registry, new_page)
        new_page = False
        (dual if dual is not None else content).append(para)
    if sp.title_page:
        tp = ET.SubElement(root, "TitlePage")
        tpc = ET.SubElement(tp, "Content")
        entries = {e.key.lower(): e.value for e in sp.title_page}
        for key in ("title", "credit", "author", "authors", "source"):
            if entries.get(key):
                p = ET.SubElement(tpc, "Paragraph", {"Alignment": "Center"})
                ET.SubElement(p, "Text").text = entries[key]
        for e in sp.title_page:
            if e.key.lower() not in ("title", "credit", "author", "authors", "source") and e.value:
                p = ET.SubElement(tpc, "Paragraph", {"Alignment": "Left"})
                ET.SubElement(p, "Text").text = e.value
    root.append(registry.tag_data())
    ET.indent(root, space="  ")
    return _serialize(root)


def export_fdx(project: Project, *, draft: bool = False) -> str:
    """The project's script as FDX with its assets tagged (`export --format fdx`)."""
    import sys

    from .sheet import asset_rows, load_script, require_exportable

    require_exportable(project, draft)

    sp, warnings = load_script(project)
    for w in warnings:
        sys.stderr.write(f"warning: {w}\n")
    registry = Registry(asset_rows(project), project.uid)
    if sp.source.format == "fdx" and sp.source.path:
        return tag_fdx(Path(sp.source.path).read_bytes(), registry)
    return write_fdx(sp, registry)
