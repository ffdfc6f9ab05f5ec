"""The Fountain reader beyond the conformance cases: scenes, line numbers, notes in dialogue,
heading anatomy (int_ext, location, time of day, tags) and speed that grows linearly."""

from __future__ import annotations

import gc
import time

import pytest

from stage5cli.screenplay import parse_fountain
from stage5cli.screenplay.scenes import split_heading

SCRIPT = """Title: Test

A prologue line.

INT. SCOTT'S APARTMENT - NIGHT #4#

Scott reads.

SCOTT
(muttering)
Bills. [[fix this line]] More bills.

.THE FINGER

It taps.

EXT. GARDEN - DAY

Birds.
"""


def test_scenes_number_headings_and_scene_zero():
    sp = parse_fountain(SCRIPT)
    assert [(s.number, s.heading, s.scene_number, s.line) for s in sp.scenes] == [
        (0, "", None, 3),
        (1, "INT. SCOTT'S APARTMENT - NIGHT", "4", 5),
        (2, "THE FINGER", None, 13),
        (3, "EXT. GARDEN - DAY", None, 17),
    ]
    assert [s.element_range for s in sp.scenes] == [(0, 1), (1, 6), (6, 8), (8, 10)]
    for scene in sp.scenes:
        assert {e.scene for e in sp.scene_elements(scene)} == {scene.number}
    assert sp.scene(2).forced and sp.scene(2).int_ext is None and sp.scene(2).location == "THE FINGER"
    assert not sp.scene(1).forced
    assert sp.scene(9) is None


def test_no_scene_zero_when_the_script_starts_with_a_heading():
    sp = parse_fountain("INT. A - DAY\n\nAction.\n")
    assert [s.number for s in sp.scenes] == [1]
    assert parse_fountain("").scenes == []


def test_every_element_has_its_line():
    sp = parse_fountain(SCRIPT)
    assert [(e.type, e.line) for e in sp.elements] == [
        ("action", 3), ("scene_heading", 5), ("action", 7), ("character", 9),
        ("parenthetical", 10), ("dialogue", 11), ("scene_heading", 13), ("action", 15),
        ("scene_heading", 17), ("action", 19),
    ]


def test_inline_notes_belong_to_the_element_that_held_them():
    sp = parse_fountain(SCRIPT)
    dialogue = sp.elements[5]
    assert dialogue.text == "Bills.  More bills." and dialogue.notes == ["fix this line"]
    assert all(e.notes is None for e in sp.elements if e is not dialogue)


def test_note_before_a_cue_does_not_break_the_cue():
    sp = parse_fountain("[[remember this]]\nMARGO\nHello.\n")
    assert [(e.type, e.text, e.notes) for e in sp.elements] == [
        ("character", "MARGO", ["remember this"]), ("dialogue", "Hello.", None)]


def test_cue_with_lowercase_words_outside_parentheses_is_action():
    sp = parse_fountain("CYBER BOSS, 40 (or any age), an ageless,\nfaceless cloud.\n")
    assert [e.type for e in sp.elements] == ["action"]


@pytest.mark.parametrize("heading, want", [
    ("INT. SCOTT'S APARTMENT - NIGHT", ("INT", "SCOTT'S APARTMENT", "NIGHT", [])),
    ("INT SCOTT'S APARTMENT, SAME TIME", ("INT", "SCOTT'S APARTMENT", "SAME TIME", [])),
    ("EXT. LIBRARY--DAY", ("EXT", "LIBRARY", "DAY", [])),
    ("INT.  WILL'S BEDROOM - NIGHT (1973)", ("INT", "WILL'S BEDROOM", "NIGHT", ["1973"])),
    ("INT.  WILL'S BEDROOM - DAY  [FLASHBACK]", ("INT", "WILL'S BEDROOM", "DAY", ["FLASHBACK"])),
    ("INT.  HALF-DARK PARIS APARTMENT - (PRESENT) DAY", ("INT", "HALF-DARK PARIS APARTMENT", "DAY", ["PRESENT"])),
    ("INT.  A.P. NEWSROOM (PARIS) - DAY", ("INT", "A.P. NEWSROOM (PARIS)", "DAY", [])),
    ("INT./EXT. BLOOM HOUSE - DAY", ("INT/EXT", "BLOOM HOUSE", "DAY", [])),
    ("I/E VAN - NIGHT", ("INT/EXT", "VAN", "NIGHT", [])),
    ("EST. FRONT LAWN - CONTINUOUS", ("EST", "FRONT LAWN", "CONTINUOUS", [])),
    ("EXT. BY THE RIVER - NIGHT - CONTINUOUS", ("EXT", "BY THE RIVER", "NIGHT - CONTINUOUS", [])),
    ("INT. LANDCRUISER, DRIVING -- A BIT LATER", ("INT", "LANDCRUISER, DRIVING", "A BIT LATER", [])),
    ("INT HOUSE DAY", ("INT", "HOUSE", "DAY", [])),
    ("INT. HOUSE - KITCHEN - DAY", ("INT", "HOUSE - KITCHEN", "DAY", [])),
    ("EXT. TOWN OF SPECTRE - VARIOUS SHOTS", ("EXT", "TOWN OF SPECTRE - VARIOUS SHOTS", None, [])),
    ("int. house - day", ("INT", "house", "DAY", [])),
    ("SNIPER SCOPE POV", (None, "SNIPER SCOPE POV", None, [])),
])
def test_heading_anatomy(heading, want):
    assert split_heading(heading) == want


def test_scene_fields_come_from_the_heading():
    sp = parse_fountain("INT.  WILL'S BEDROOM - NIGHT (1973) #12#\n\nHe sleeps.\n")
    scene = sp.scene(1)
    assert (scene.heading, scene.int_ext, scene.location, scene.time_of_day, scene.tags, scene.scene_number) == (
        "INT.  WILL'S BEDROOM - NIGHT (1973)", "INT", "WILL'S BEDROOM", "NIGHT", ["1973"], "12")


@pytest.mark.slow
def test_parsing_is_linear_in_size():
    """10x the text may not take much more than 10x the time (CPU time, so other processes on a
    busy machine do not count; the collector is paused while timing). One collection before all
    the timings, not one per run: late in the suite a full collection of the test process's heap
    (torch, diffusers, litellm loaded) costs more than the parses themselves."""
    unit = SCRIPT.split("\n", 2)[2] * 40  # about 7 KB without the title page
    small, big = unit * 3, unit * 30

    def best(text):
        times = []
        for _ in range(5):
            t = time.process_time()
            parse_fountain(text)
            times.append(time.process_time() - t)
        return min(times)

    gc.collect()
    gc.disable()
    try:
        best(small)  # warm up
        ratio = best(big) / best(small)
    finally:
        gc.enable()
    assert ratio < 16, f"10x the text took {ratio:.1f}x the time"


def test_the_parse_leaves_the_collector_as_it_found_it():
    """The parse pauses the cyclic collector; it must come back on, and stay off if it was off."""
    assert gc.isenabled()
    parse_fountain(SCRIPT)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_fountain(SCRIPT, loose=True)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_heading_separators_of_every_kind():
    """Each separator alternative (the pattern starts with a lookahead for its first characters)."""
    assert split_heading("INT. A — B – DAY")[1:3] == ("A — B", "DAY")
    assert split_heading("INT. A--B--NIGHT")[1:3] == ("A--B", "NIGHT")
    assert split_heading("EXT. ROAD,LATER")[1:3] == ("ROAD", "LATER")
    assert split_heading("- HOUSE - DAY -")[1:3] == ("HOUSE", "DAY")
    assert split_heading("INT. HOUSE NIGHT") == ("INT", "HOUSE", "NIGHT", [])


def test_a_first_heading_with_a_clock_time_is_not_a_title_page():
    sp = parse_fountain("INT. OFFICE - 9:30 AM\n\nPhones ring.\n")
    assert sp.title_page == [] and [s.heading for s in sp.scenes] == ["INT. OFFICE - 9:30 AM"]
    sp = parse_fountain("Title: Office\nAuthor: Me\n\nINT. OFFICE - 9:30 AM\n\nPhones ring.\n")
    assert [e.key for e in sp.title_page] == ["Title", "Author"]


@pytest.mark.parametrize("text", [
    "*a " * 20000, "**a " * 20000, "***a " * 20000, "_a " * 20000,  # emphasis that never closes
    "/* " * 20000, "[[" * 20000,  # boneyard and notes that never close
    "INT. A" + " " * 20000 + "#", "INT. A " + "#a" * 20000 + "#",  # scene-number look-alikes
    "INT. A (" + "1 " * 20000 + ")", "INT. A" + " - B" * 20000,  # heading anatomy
    "Title:\n" + "    line\n" * 20000,  # a huge title page value
], ids=["italic", "bold", "bold-italic", "underline", "boneyard", "notes", "spaces-hash",
        "hashes", "parens", "separators", "title"])
def test_pathological_lines_stay_fast(text):
    """Patterns that backtrack on a long line would hang here (each was once quadratic)."""
    start = time.process_time()
    parse_fountain(text)
    parse_fountain(text, loose=True)
    assert time.process_time() - start < 1.0
