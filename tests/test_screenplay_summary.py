"""summarize(): title, format, scene count, speaking characters, pages estimate, warnings."""

from __future__ import annotations

from stage5cli.screenplay import loads, parse_fountain
from stage5cli.screenplay.summary import character_name, pages_estimate, summarize

SCRIPT = """Title: _**BRICK & STEEL**_
    _**FULL RETIRED**_

INT. GARAGE - DAY

STEEL
Beer's ready!

BRICK (V.O.)
Are they cold?

STEEL (CONT'D)
(grinning)
Ice cold.

@McCLANE
Yippie.

Brick (cont'd) walks out.

BRICK
Bye.
"""


def test_summary_keys_and_values():
    s = summarize(loads(SCRIPT.encode(), name="b.fountain"))
    assert set(s) == {"title", "format", "scenes", "characters", "pages_estimate", "warnings"}
    assert s["title"] == "BRICK & STEEL FULL RETIRED"  # emphasis markers gone, lines joined
    assert s["format"] == "fountain"
    assert s["scenes"] == 1
    assert s["characters"] == [
        {"name": "BRICK", "lines": 2}, {"name": "STEEL", "lines": 2}, {"name": "McCLANE", "lines": 1}]
    assert s["pages_estimate"] == 1
    assert s["warnings"] == []


def test_no_headings_warns():
    s = summarize(parse_fountain("Just action.\n\nMAN\nHi.\n"))
    assert s["scenes"] == 0
    assert "no scene headings: everything is scene 0" in s["warnings"]
    assert "no title on a title page" in s["warnings"]


def test_no_dialogue_warns():
    s = summarize(parse_fountain("Title: X\n\nINT. A - DAY\n\nNothing is said.\n"))
    assert s["warnings"] == ["no character cues: no dialogue was recognised"]


def test_character_name_strips_contd():
    assert character_name("STEEL CONT'D") == "STEEL"
    assert character_name("STEEL (CONT’D)") == "STEEL"
    assert character_name("  MR.   SMITH ") == "MR. SMITH"


def test_pages_grow_with_the_text():
    one = parse_fountain("INT. A - DAY\n\n" + "Action line here.\n\n" * 20)
    five = parse_fountain("INT. A - DAY\n\n" + "Action line here.\n\n" * 140)
    assert pages_estimate(one) == 1
    assert 4 <= pages_estimate(five) <= 6
    assert pages_estimate(parse_fountain("")) == 0
    # a page break starts a new page
    assert pages_estimate(parse_fountain("A.\n\n===\n\nB.\n")) == 2
