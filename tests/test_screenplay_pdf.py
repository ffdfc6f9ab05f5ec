"""PDF scripts: the tests lay scripts out like a screenplay with fpdf2 (Courier 12, cues 2.2"
right of the action margin, dialogue 1", parentheticals 1.6", transitions flush right, page
numbers top right) and read them back."""

from __future__ import annotations

import builtins
import sys
import textwrap
from pathlib import Path

import pytest

from stage5cli.errors import UsageError
from stage5cli.screenplay import load, loads, parse_fountain
from stage5cli.screenplay.model import Screenplay
from stage5cli.screenplay.pdf import NO_TEXT, pdf_to_fountain
from stage5cli.screenplay.summary import plain_text

fpdf = pytest.importorskip("fpdf")
pytest.importorskip("pypdf")

CORPUS = Path(__file__).parent / "data" / "corpus"
LH = 1 / 6  # 6 lines an inch
X = {"action": 1.5, "scene_heading": 1.5, "dialogue": 2.5, "lyrics": 2.5, "parenthetical": 3.1,
     "character": 3.7}
WIDTH = {"action": 60, "scene_heading": 60, "dialogue": 35, "lyrics": 35, "parenthetical": 25,
         "character": 38, "transition": 30, "centered": 50}


def make_pdf(sp: Screenplay, *, page_numbers: bool = True, margin_numbers: bool = False,
             header: str | None = None, title_page: bool = True) -> bytes:
    """Lay a Screenplay out as a screenplay PDF; dialogue blocks never split across pages."""
    pdf = fpdf.FPDF(unit="in", format="letter")
    pdf.set_auto_page_break(False)
    pdf.set_font("Courier", size=12)
    state = {"y": 99.0, "page": 0}

    def new_page():
        pdf.add_page()
        state["page"] += 1
        state["y"] = 1.0
        if page_numbers and state["page"] > 1:
            pdf.set_xy(7.0, 0.5)
            pdf.cell(0.5, LH, f"{state['page'] - (1 if title_page else 0)}.")
        if header and state["page"] > 1:
            pdf.set_xy(1.5, 0.5)
            pdf.cell(3, LH, header)

    def put(x: float, text: str):
        pdf.set_xy(x, state["y"])
        pdf.cell(0, LH, text)
        state["y"] += LH

    if title_page and sp.title_page:
        new_page()
        state["y"] = 3.5
        for entry in sp.title_page[:3]:
            for line in plain_text(entry.value).split("\n"):
                put(4.25 - pdf.get_string_width(line) / 2, line)
            state["y"] += LH
        state["y"] = 9.0
        put(1.5, "writer@example.com")
        state["y"] = 99.0  # the script starts on a new page

    # group elements into blocks that stay on one page
    blocks: list[list] = []
    for el in sp.elements:
        if el.type in ("section", "synopsis", "note"):
            continue
        if el.type in ("dialogue", "parenthetical", "lyrics") and blocks and blocks[-1][0].type == "character":
            blocks[-1].append(el)
        else:
            blocks.append([el])
    for block in blocks:
        if block[0].type == "page_break":
            state["y"] = 99.0
            continue
        rendered: list[tuple[float, str]] = []
        for el in block:
            kind = el.type
            text = plain_text(el.text)
            lines = [w for part in text.split("\n")
                     for w in (textwrap.wrap(part, WIDTH.get(kind, 60), break_on_hyphens=False) or [""])]
            for line in lines:
                if kind == "transition":
                    rendered.append((7.5 - pdf.get_string_width(line), line))
                elif kind == "centered":
                    rendered.append((4.25 - pdf.get_string_width(line) / 2, line))
                else:
                    rendered.append((X.get(kind, 1.5), line))
        if state["y"] + LH * (len(rendered) + 1) > 10.0:
            new_page()
        for x, line in rendered:
            if margin_numbers and block[0].type == "scene_heading" and block[0].scene_number:
                pdf.set_xy(1.0, state["y"])
                pdf.cell(0.4, LH, block[0].scene_number)
                pdf.set_xy(7.3, state["y"])
                pdf.cell(0.4, LH, block[0].scene_number)
            put(x, line)
        state["y"] += LH
    return bytes(pdf.output())


def shape(sp: Screenplay):
    heads = [" ".join(plain_text(s.heading).split()) for s in sp.scenes if s.number]
    cues = [e.name for e in sp.elements if e.type == "character"]
    speech = " ".join(plain_text(e.text) for e in sp.elements if e.type in ("dialogue", "parenthetical"))
    return heads, cues, " ".join(speech.split())


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.fountain")))
def test_corpus_script_as_pdf_reads_back(name):
    original = load(CORPUS / name)
    data = make_pdf(original, header="DRAFT 3")
    sp = loads(data, name=name.replace(".fountain", ".pdf"))
    assert sp.source.format == "pdf" and sp.source.encoding == "pdf"
    got_heads, got_cues, got_speech = shape(sp)
    want_heads, want_cues, want_speech = shape(original)
    assert got_heads == want_heads
    assert got_cues == want_cues
    assert got_speech == want_speech
    assert sp.title and plain_text(original.title).split()[0] in sp.title


SAMPLE = """Title: Kettle
Credit: Written by
Author: Ann Writer

INT. KITCHEN - NIGHT #7#

The kettle screams.

MARGO (V.O.)
(quietly, as if the walls
could hear her)
Turn it off.
NOW.

CUT TO:

EXT. GARDEN - DAY #8A#

BANG!

The door opens.
"""


def test_structure_scene_numbers_and_furniture():
    sp = parse_fountain(SAMPLE)
    data = make_pdf(sp, margin_numbers=True)
    text = pdf_to_fountain(data)
    assert "2." not in text.split("\n")  # page number gone
    got = loads(data, name="k.pdf")
    assert [(s.heading, s.scene_number, s.location) for s in got.scenes if s.number] == [
        ("INT. KITCHEN - NIGHT", "7", "KITCHEN"), ("EXT. GARDEN - DAY", "8A", "GARDEN")]
    types = [e.type for e in got.elements]
    assert types == ["scene_heading", "action", "character", "parenthetical", "dialogue",
                     "transition", "scene_heading", "action", "action"]
    paren = got.elements[3]
    assert paren.text == "(quietly, as if the walls could hear her)"  # a wrapped parenthetical
    assert got.elements[4].text == "Turn it off.\nNOW."  # upper-case dialogue stays dialogue
    assert got.elements[7].text == "BANG!"  # an upper-case action line is not a cue
    assert [(t.key, t.value) for t in got.title_page][:3] == [
        ("Title", "Kettle"), ("Credit", "Written by"), ("Author", "Ann Writer")]


def test_a_page_of_pure_dialogue_keeps_its_indentation():
    """pypdf's layout mode re-aligns each page to its leftmost text; we must not."""
    long_speech = "\n".join(["Words and more words to fill a page."] * 40)
    src = f"INT. ROOM - DAY\n\nShe sits.\n\nANN\n{long_speech}\n\nBEN\n{long_speech}\n"
    data = make_pdf(parse_fountain(src), title_page=False)
    got = loads(data, name="x.pdf")
    assert [e.name for e in got.elements if e.type == "character"] == ["ANN", "BEN"]
    assert [e.type for e in got.elements] == ["scene_heading", "action", "character", "dialogue",
                                              "character", "dialogue"]


def test_a_first_page_of_action_is_not_a_title_page():
    src = "The night is long.\n\nShe waits by the window.\n\n===\n\nINT. ROOM - DAY\n\nMorning.\n"
    got = loads(make_pdf(parse_fountain(src), title_page=False), name="x.pdf")
    assert got.title_page == []
    assert [e.text for e in got.elements][:2] == ["The night is long.", "She waits by the window."]
    assert [s.number for s in got.scenes] == [0, 1]


def test_more_and_contd_at_page_breaks_are_dropped():
    pdf = fpdf.FPDF(unit="in", format="letter")
    pdf.set_font("Courier", size=12)
    pdf.add_page()
    rows = [(1.5, "INT. HALL - DAY"), (None, ""), (1.5, "They wait."), (None, ""),
            (3.7, "ANN"), (2.5, "First half of what"), (3.7, "(MORE)")]
    rows2 = [(7.0, "2."), (None, ""), (3.7, "ANN (CONT'D)"), (2.5, "she had to say."),
             (None, ""), (1.5, "CONTINUED:"), (1.5, "Silence.")]
    for page_rows in (rows, rows2):
        y = 1.0
        for x, text in page_rows:
            if x is not None:
                pdf.set_xy(x, y)
                pdf.cell(0, LH, text)
            y += LH
        if page_rows is rows:
            pdf.add_page()
    got = loads(bytes(pdf.output()), name="m.pdf")
    texts = [(e.type, e.text) for e in got.elements]
    assert ("character", "ANN (CONT'D)") in texts
    assert all("MORE" not in t and "CONTINUED" not in t for _, t in texts)
    assert texts[-1] == ("action", "Silence.")


def test_image_only_pdf_has_no_text(tmp_path):
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")  # drawn, no text: what a scan looks like to us
    path = tmp_path / "scan.pdf"
    path.write_bytes(bytes(pdf.output()))
    with pytest.raises(UsageError) as info:
        load(path)
    assert str(info.value) == NO_TEXT


def test_encrypted_pdf_is_refused(tmp_path):
    pdf = fpdf.FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Courier", size=12)
    pdf.cell(0, 10, "INT. VAULT - NIGHT")
    path = tmp_path / "locked.pdf"
    path.write_bytes(bytes(pdf.output()))
    with pytest.raises(UsageError) as info:
        load(path)
    assert str(info.value).startswith(NO_TEXT) and "password" in str(info.value)


def test_damaged_pdf_is_one_line(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ngarbage\x00\x01")
    with pytest.raises(UsageError) as info:
        load(path)
    assert "\n" not in str(info.value)


def test_pdf_magic_wins_over_the_extension(tmp_path):
    data = make_pdf(parse_fountain("INT. A - DAY\n\nB.\n"), title_page=False)
    path = tmp_path / "script.fountain"
    path.write_bytes(data)
    assert load(path).source.format == "pdf"


def test_missing_pypdf_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_pypdf(name, *args, **kwargs):
        if name == "pypdf" or name.startswith("pypdf."):
            raise ImportError("No module named 'pypdf'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "pypdf", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pypdf)
    with pytest.raises(UsageError) as info:
        loads(b"%PDF-1.4\n%%EOF\n", name="x.pdf")
    assert "pip install 'stage5[pdf]'" in str(info.value)
