"""Final Draft breakdown tags: <TagData> and the tagged <Text TagNumber="N"> runs of an FDX.

    <TagData>
      <TagCategories><TagCategory Id="…" Name="Cast Members" Number="2" Color="…" Style="Bold"/>
      <TagDefinitions><TagDefinition Id="…" CatId="…" Label="MARA" Number="1"/>
      <Tags><Tag Number="1"><DefId>…</DefId></Tag>
    </TagData>

A tagged run's TagNumber names a <Tag>; the Tag's <DefId>s name definitions (one run may carry
several); a definition names its category. What does not resolve is left out with a warning.
"""

from __future__ import annotations

from stage5cli.screenplay.model import Screenplay, ScriptTag, TagSpan

MAX_WARNINGS = 20


def _local(tag) -> str:
    return (tag if isinstance(tag, str) else "").rsplit("}", 1)[-1]


def _kids(el, name: str):
    return [c for c in el if _local(c.tag) == name]


def _first(el, name: str):
    found = _kids(el, name)
    return found[0] if found else None


def _locate(text: str, run: str, raw_start: int) -> tuple[int, int] | None:
    """Where a tagged run's text sits in the element's (cleaned) text: the occurrence nearest
    its raw offset."""
    needle = run.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ").strip()
    if not needle:
        return None
    best = None
    at = text.find(needle)
    while at != -1:
        if best is None or abs(at - raw_start) < abs(best - raw_start):
            best = at
        at = text.find(needle, at + 1)
    return None if best is None else (best, best + len(needle))


def read_tags(tag_data, tagged: list[tuple[int | None, list[tuple[str, int, int, str]]]],
              sp: Screenplay) -> tuple[list[ScriptTag], list[str]]:
    """The script's tags, one per tag definition with its spans, and the warnings."""
    warnings: list[str] = []
    categories: dict[str, str] = {}
    cats = _first(tag_data, "TagCategories")
    for c in _kids(cats, "TagCategory") if cats is not None else []:
        if c.get("Id"):
            categories[c.get("Id")] = " ".join((c.get("Name") or "").split())
    definitions: dict[str, tuple[str, str]] = {}
    defs = _first(tag_data, "TagDefinitions")
    for d in _kids(defs, "TagDefinition") if defs is not None else []:
        did = d.get("Id")
        if not did:
            continue
        cat_id = d.get("CatId") or ""
        if cat_id not in categories:
            warnings.append(f"tag definition {d.get('Label')!r} points to a missing category "
                            f"{cat_id!r}: kept as misc")
        definitions[did] = (" ".join((d.get("Label") or "").split()), categories.get(cat_id, ""))
    tags: dict[int, list[str]] = {}
    tags_el = _first(tag_data, "Tags")
    for t in _kids(tags_el, "Tag") if tags_el is not None else []:
        try:
            number = int((t.get("Number") or "").strip())
        except ValueError:
            warnings.append(f"<Tag Number={t.get('Number')!r}> is not a number: ignored")
            continue
        ids = []
        for ref in _kids(t, "DefId"):
            did = "".join(ref.itertext()).strip()
            if did in definitions:
                ids.append(did)
            else:
                warnings.append(f"tag {number} points to a missing tag definition {did!r}: ignored")
        tags[number] = ids
    out: dict[str, ScriptTag] = {}
    used: set[int] = set()
    for element, runs in tagged:
        for number_text, start, _end, text in runs:
            try:
                number = int(number_text)
            except ValueError:
                number = None
            if number is None or number not in tags:
                where = "" if element is None else f" (scene {sp.elements[element].scene})"
                warnings.append(f"text {text.strip()[:40]!r}{where} is tagged {number_text!r}, "
                                "which no <Tag> defines: ignored")
                continue
            used.add(number)
            if element is None:
                warnings.append(f"tag {number} ({text.strip()[:40]!r}) is on a paragraph with no "
                                "script text: ignored")
                continue
            el = sp.elements[element]
            found = _locate(el.text, text, start)
            if found is None:
                warnings.append(f"tag {number} ({text.strip()[:40]!r}) is outside the text of "
                                f"scene {el.scene}: ignored")
                continue
            for did in tags[number]:
                label, category = definitions[did]
                st = out.get(did)
                if st is None:
                    st = out[did] = ScriptTag(label=label, category=category, definition_id=did)
                if number not in st.numbers:
                    st.numbers.append(number)
                st.spans.append(TagSpan(element=element, scene=el.scene, start=found[0],
                                        end=found[1], text=el.text[found[0]:found[1]]))
    for number in sorted(set(tags) - used):
        labels = ", ".join(repr(definitions[d][0]) for d in tags[number]) or "no definition"
        warnings.append(f"tag {number} ({labels}) tags no text in the script: ignored")
    if len(warnings) > MAX_WARNINGS:
        extra = len(warnings) - MAX_WARNINGS
        warnings = [*warnings[:MAX_WARNINGS], f"... and {extra} more tag problems"]
    return [t for t in out.values() if t.spans], warnings
