"""Real scripts parse with the scene counts of SOURCES.md.

The three public-domain / CC-BY scripts are vendored in tests/data/corpus and always run; the
full set (Big Fish and the others whose licences keep them out of this repository) is read from
../shared/corpus beside the clone, and those tests skip when it is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stage5cli.screenplay import load
from stage5cli.screenplay.summary import summarize

HERE = Path(__file__).resolve().parent
VENDORED = HERE / "data" / "corpus"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"
needs_shared = pytest.mark.skipif(
    not (SHARED / "SOURCES.md").is_file(), reason=f"shared corpus not found at {SHARED}"
)

# as stated in SOURCES.md (the shared one and the vendored note)
VENDORED_COUNTS = {
    "the_library_freak_out.fountain": 3,
    "ascent_to_guru_peak.fountain": 6,
    "cyber_bob_ep1.fountain": 3,
}


def headings(sp) -> int:
    return sum(1 for s in sp.scenes if s.number > 0)


@pytest.mark.parametrize("name, count", sorted(VENDORED_COUNTS.items()))
def test_vendored_scripts(name, count):
    sp = load(VENDORED / name)
    assert headings(sp) == count
    assert sp.scenes[-1].element_range[1] == len(sp.elements)
    summary = summarize(sp)
    assert summary["scenes"] == count and summary["characters"] and not summary["warnings"]


def test_vendored_counts_match_the_note():
    note = (VENDORED / "SOURCES.md").read_text(encoding="utf-8")
    for name, count in VENDORED_COUNTS.items():
        assert re.search(rf"`{re.escape(name)}` \| {count} \|", note), name


def test_library_freak_out_details():
    sp = load(VENDORED / "the_library_freak_out.fountain")
    assert [(s.int_ext, s.location, s.time_of_day) for s in sp.scenes if s.number] == [
        ("EXT", "LIBRARY", "DAY"), ("INT", "LIBRARY", "DAY"), ("EXT", "LIBRARY", "DAY")]
    names = {c["name"] for c in summarize(sp)["characters"]}
    assert "PATRONS THREE AND FOUR" in names


def test_cyber_bob_details():
    sp = load(VENDORED / "cyber_bob_ep1.fountain")
    assert sp.title_page[0].value.startswith("BOB THE CYBER PAWN")
    notes = [e for e in sp.elements if e.type == "note"]
    assert [n.line for n in notes[:2]] == [14, 15]
    names = [c["name"] for c in summarize(sp)["characters"]]
    assert "CYBER BOSS, 40" not in names and {"BOB", "CYBER BOB", "DOG"} <= set(names)


def shared_counts() -> dict[str, int]:
    text = (SHARED / "SOURCES.md").read_text(encoding="utf-8")
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^\| `([^`]+\.fountain)` \|[^|]*\|[^|]*\| (\d+)", text, re.M)}


@needs_shared
def test_shared_sources_table_lists_seven_scripts():
    assert len(shared_counts()) == 7


@needs_shared
@pytest.mark.parametrize("name", [
    "brick_and_steel.fountain", "ascent_to_guru_peak.fountain", "cyber_bob_ep1.fountain",
    "the_library_freak_out.fountain", "printing_trouble.fountain",
    "the_last_birthday_card.fountain", "big_fish.fountain",
])
def test_shared_corpus_scene_counts(name):
    sp = load(SHARED / name)
    assert headings(sp) == shared_counts()[name]


@needs_shared
def test_big_fish():
    sp = load(SHARED / "big_fish.fountain")
    assert headings(sp) == 190
    assert sp.scenes[0].number == 0  # the prologue before the first heading
    assert any("A RIVER." in e.text for e in sp.scene_elements(sp.scenes[0]))
    assert sp.title == "Big Fish"
    # EXT/INT. is not a heading prefix: those lines are action
    assert [e.type for e in sp.elements if e.text.startswith("EXT/INT.")] == ["action", "action"]
    scene = next(s for s in sp.scenes if s.heading.startswith("INT.  WILL'S BEDROOM - NIGHT (1973)"))
    assert (scene.location, scene.time_of_day, scene.tags) == ("WILL'S BEDROOM", "NIGHT", ["1973"])
    summary = summarize(sp)
    assert summary["characters"][0] == {"name": "EDWARD", "lines": summary["characters"][0]["lines"]}
    assert 100 <= summary["pages_estimate"] <= 135  # about 120 pages printed


@needs_shared
def test_last_birthday_card_forced_shots_and_comma_headings():
    sp = load(SHARED / "the_last_birthday_card.fountain")
    comma = next(s for s in sp.scenes if s.heading == "INT SCOTT'S APARTMENT, SAME TIME")
    assert (comma.int_ext, comma.location, comma.time_of_day) == ("INT", "SCOTT'S APARTMENT", "SAME TIME")
    assert any(s.forced and s.heading == "THE FINGER" for s in sp.scenes)
    assert any(e.type == "section" for e in sp.elements) and any(e.type == "synopsis" for e in sp.elements)
