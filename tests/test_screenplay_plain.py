"""Plain text scripts (.txt): Fountain rules with looser scene headings."""

from __future__ import annotations

from stage5cli.screenplay import loads, parse_fountain
from stage5cli.screenplay.plain import parse_plain

TYPED = """12 INT. HOUSE - DAY 12
John enters.

12A EXT. GARDEN - NIGHT 12A

INT CAR - MOVING
Rain on the glass.

EXT/INT. BARN - DAY

                    JOHN
          We should go.

Est. 1990, the shop has seen better days.

I/E VAN - NIGHT
"""


def test_numbered_and_period_less_headings():
    sp = parse_plain(TYPED)
    assert sp.source.format == "plain"
    assert [(s.heading, s.scene_number, s.int_ext, s.location) for s in sp.scenes] == [
        ("INT. HOUSE - DAY", "12", "INT", "HOUSE"),
        ("EXT. GARDEN - NIGHT", "12A", "EXT", "GARDEN"),
        ("INT CAR - MOVING", None, "INT", "CAR - MOVING"),
        ("EXT/INT. BARN - DAY", None, "INT/EXT", "BARN"),
        ("I/E VAN - NIGHT", None, "INT/EXT", "VAN"),
    ]


def test_heading_may_be_followed_directly_by_text():
    sp = parse_plain(TYPED)
    first = sp.scene_elements(sp.scenes[0])
    assert [(e.type, e.text) for e in first] == [("scene_heading", "INT. HOUSE - DAY"), ("action", "John enters.")]
    # the same text read as Fountain: no blank line after, so it is a cue and dialogue
    strict = parse_fountain("INT. HOUSE - DAY\nJohn enters.\n")
    assert [e.type for e in strict.elements] == ["character", "dialogue"]


def test_indented_cues_and_sentences_stay_what_they_are():
    sp = parse_plain(TYPED)
    kinds = [(e.type, e.text) for e in sp.elements]
    assert ("character", "JOHN") in kinds and ("dialogue", "We should go.") in kinds
    assert ("action", "Est. 1990, the shop has seen better days.") in kinds


def test_txt_files_use_the_plain_reader():
    sp = loads(TYPED.encode(), name="typed.txt")
    assert sp.source.format == "plain"
    assert len([s for s in sp.scenes if s.number]) == 5
    # the same bytes as Fountain find only the headings Fountain allows
    fountain = loads(TYPED.encode(), name="typed.fountain")
    assert len([s for s in fountain.scenes if s.number]) < 5


TITLED = """The Clockmaker's Apprentice

Written by Ann Writer
(c) 2026 Ann Writer

Draft 3


1 INT. CLOCK SHOP - DAY 1

Clocks tick.

HENRIK
Sweep.
"""


def test_a_typed_title_block_becomes_the_title_page():
    sp = parse_plain(TITLED)
    assert [(t.key, t.value) for t in sp.title_page] == [
        ("Title", "The Clockmaker's Apprentice"), ("Credit", "Written by"), ("Author", "Ann Writer"),
        ("Copyright", "(c) 2026 Ann Writer"), ("Notes", "Draft 3")]
    assert [(e.type, e.line) for e in sp.elements] == [
        ("scene_heading", 9), ("action", 11), ("character", 13), ("dialogue", 14)]
    assert sp.scenes[0].scene_number == "1"


def test_text_that_only_looks_like_a_title_block_stays_action():
    src = "The river.\n\nBy the river, a man waits.\n\nINT. HUT - NIGHT\n\nRain.\n"
    sp = parse_plain(src)
    assert sp.title_page == []
    assert [e.text for e in sp.elements][:2] == ["The river.", "By the river, a man waits."]
    fountain_titled = "Title: X\n\nINT. HUT - NIGHT\n\nRain.\n"
    assert [t.key for t in parse_plain(fountain_titled).title_page] == ["Title"]
