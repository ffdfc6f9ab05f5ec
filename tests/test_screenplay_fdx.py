"""Final Draft (.fdx): a small FDX writer turns parsed scripts into FDX; reading them back must
give the same scenes and cues. Hostile XML (entity bombs, external entities, garbage) gives one
line, fast."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET  # only to WRITE test files; reading goes through defusedxml
from pathlib import Path

import pytest

from stage5cli.errors import UsageError
from stage5cli.screenplay import load, loads, parse_fountain
from stage5cli.screenplay.fdx import parse_fdx
from stage5cli.screenplay.model import Screenplay

CORPUS = Path(__file__).parent / "data" / "corpus"
SCRIPTS = Path(__file__).parent / "data" / "scripts"
_FDX_TYPES = {
    "scene_heading": "Scene Heading",
    "action": "Action",
    "centered": "Action",
    "character": "Character",
    "dialogue": "Dialogue",
    "parenthetical": "Parenthetical",
    "transition": "Transition",
    "lyrics": "Lyrics",
}


def _paragraph(el) -> ET.Element:
    p = ET.Element("Paragraph", Type=_FDX_TYPES[el.type])
    if el.type == "centered":
        p.set("Alignment", "Center")
    if el.type == "scene_heading" and el.scene_number:
        p.set("Number", el.scene_number)
    text = el.text
    # split the text into two runs (the second one bold) to exercise run joining
    cut = text.find(" ", len(text) // 2)
    runs = [text] if cut < 0 else [text[:cut], text[cut:]]
    for k, run in enumerate(runs):
        t = ET.SubElement(p, "Text")
        if k:
            t.set("Style", "Bold")
        t.text = run
    return p


def to_fdx(sp: Screenplay) -> bytes:
    """Write a Screenplay as Final Draft XML (dual dialogue pairs inside <DualDialogue>)."""
    root = ET.Element("FinalDraft", DocumentType="Script", Template="No", Version="5")
    content = ET.SubElement(root, "Content")
    dual_box: ET.Element | None = None
    for el in sp.elements:
        if el.type not in _FDX_TYPES:
            continue
        if el.type == "character":
            if el.dual == "left":
                holder = ET.SubElement(content, "Paragraph")
                dual_box = ET.SubElement(holder, "DualDialogue")
            elif el.dual is None:
                dual_box = None
        elif el.type not in ("dialogue", "parenthetical", "lyrics"):
            dual_box = None
        (dual_box if dual_box is not None else content).append(_paragraph(el))
        if el.type == "character" and el.dual == "right":
            pass  # the right speech follows inside the same box
    tp = ET.SubElement(ET.SubElement(root, "TitlePage"), "Content")
    for entry in sp.title_page:
        p = ET.SubElement(tp, "Paragraph", Alignment="Center")
        ET.SubElement(p, "Text").text = entry.value
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n' + ET.tostring(root, encoding="utf-8")


def _shape(sp: Screenplay):
    heads = [(s.number, s.heading, s.scene_number) for s in sp.scenes]
    cues = [(e.name, tuple(e.extensions or ()), e.dual) for e in sp.elements if e.type == "character"]
    speech = [" ".join(e.text.split()) for e in sp.elements if e.type in ("dialogue", "parenthetical")]
    return heads, cues, speech


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.fountain")))
def test_corpus_script_round_trips_through_fdx(name):
    original = load(CORPUS / name)
    data = to_fdx(original)
    back = loads(data, name=name.replace(".fountain", ".fdx"))
    assert back.source.format == "fdx"
    assert _shape(back) == _shape(original)
    assert [s.location for s in back.scenes] == [s.location for s in original.scenes]
    assert back.title == " ".join(original.title.split())


def test_round_trip_keeps_dual_dialogue_and_scene_numbers():
    sp = parse_fountain("INT. HOUSE - DAY #12A#\n\nBRICK\nScrew retirement.\n\nSTEEL ^\nScrew it.\n\nDone.\n")
    back = parse_fdx(to_fdx(sp))
    assert _shape(back) == _shape(sp)
    assert [e.dual for e in back.elements if e.type == "character"] == ["left", "right"]
    assert back.scenes[0].scene_number == "12A"


def test_hand_written_fdx(tmp_path):
    sp = load(SCRIPTS / "sample.fdx")
    assert sp.source.format == "fdx" and sp.source.encoding == "xml"
    assert len(sp.source.sha256) == 64
    assert sp.title == "THE SAMPLE"
    assert [(t.key, t.value) for t in sp.title_page][:3] == [
        ("Title", "THE SAMPLE"), ("Credit", "Written by"), ("Author", "Ann Writer")]
    assert [(s.number, s.heading, s.scene_number, s.int_ext, s.location, s.time_of_day) for s in sp.scenes] == [
        (1, "INT. KITCHEN - NIGHT", "1", "INT", "KITCHEN", "NIGHT"),
        (2, "EXT. GARDEN - DAY", "2A", "EXT", "GARDEN", "DAY"),
    ]
    types = [e.type for e in sp.elements]
    assert types == ["scene_heading", "action", "character", "parenthetical", "dialogue", "action",
                     "transition", "scene_heading", "character", "dialogue", "character", "dialogue",
                     "action", "centered"]
    action = sp.elements[1]
    assert action.text == "The kettle screams. Nobody moves."  # two <Text> runs joined
    assert action.html == "The kettle <b>screams</b>. Nobody moves."
    cue = sp.elements[2]
    assert (cue.name, cue.extensions) == ("MARGO", ["V.O."])
    assert [(e.name, e.dual) for e in sp.elements if e.type == "character"][1:] == [
        ("ANN", "left"), ("BEN", "right")]
    assert sp.elements[12].text == "A CLOSE-UP OF THE KETTLE"  # Shot: action, not a scene
    assert all(e.scene == (0 if i < 0 else (1 if i < 7 else 2)) for i, e in enumerate(sp.elements))
    assert [e.line for e in sp.elements][:3] == [1, 2, 3]


def test_content_sniffing_finds_fdx_without_the_extension(tmp_path):
    data = (SCRIPTS / "sample.fdx").read_bytes()
    for name in ("script", "script.fountain", "script.txt"):
        path = tmp_path / name
        path.write_bytes(data)
        assert load(path).source.format == "fdx"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE FinalDraft [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<FinalDraft DocumentType="Script"><Content><Paragraph Type="Action"><Text>&lol9;</Text></Paragraph></Content></FinalDraft>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE FinalDraft [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<FinalDraft><Content><Paragraph Type="Action"><Text>&secret;</Text></Paragraph></Content></FinalDraft>
"""


@pytest.mark.parametrize("data", [BOMB, XXE], ids=["billion-laughs", "external-entity"])
def test_entity_attacks_are_refused_fast(tmp_path, data):
    path = tmp_path / "evil.fdx"
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(UsageError) as info:
        load(path)
    assert time.perf_counter() - start < 1.0
    msg = str(info.value)
    assert "\n" not in msg and "FDX" in msg


@pytest.mark.parametrize("data", [
    b"<FinalDraft><Content><Paragraph Type='Action'><Text>unclosed",
    b"<?xml version='1.0'?><FinalDraft><Content></Contents></FinalDraft>",
    b"\xff\xfe<\x00F\x00i\x00n\x00a\x00l\x00D\x00r\x00a\x00f\x00t\x00",
], ids=["truncated", "mismatched-tag", "utf16-truncated"])
def test_malformed_fdx_is_one_line(tmp_path, data):
    path = tmp_path / "bad.fdx"
    path.write_bytes(data)
    with pytest.raises(UsageError) as info:
        load(path)
    assert "\n" not in str(info.value)
    assert "Final Draft" in str(info.value)


def test_xml_that_is_not_final_draft(tmp_path):
    with pytest.raises(UsageError, match="not a Final Draft file"):
        loads(b"<?xml version='1.0'?><html><body>hi</body></html>", name="x.fdx")


def test_empty_fdx_content_parses_to_nothing():
    sp = loads(b"<FinalDraft DocumentType='Script'><Content/></FinalDraft>")
    assert sp.source.format == "fdx" and sp.elements == [] and sp.scenes == []
