"""Issue 15, built-in pass 2: descriptions of visual fact about the asset itself."""

from __future__ import annotations

import re

import pytest

from stage5cli.extract.builtin import BuiltinExtractor, distill_builtin, extract_builtin
from stage5cli.models import ExtractedAsset
from stage5cli.screenplay import parse_fountain

SCRIPT = """\
INT. KITCHEN - NIGHT

EDWARD (40s), in a grey suit, sits beside WILL (17), who wears a red hoodie.

WILL
Dad.

EDWARD
Son.

Edward lifts an old brass LANTERN, dented and green with age.

EXT. PIER - DAY

Three old friends, ADA, BEA and CORA, each in a yellow raincoat, wait on the boards.

ADA
Late.

BEA
Always.

CORA
Cold.

INT. STAGE - NIGHT

The curtain rises on MARA (27) at a microphone. She is a striking woman with silver hair.

MARA
Good evening.

INT. CELLAR - NIGHT

WILL
Anyone?
"""
META = re.compile(r"script|screenplay|style|reference|full-length|no further|open to design", re.I)


@pytest.fixture(scope="module")
def assets():
    return {a.name: a for a in extract_builtin(parse_fountain(SCRIPT), style_name="ink")}


def test_no_meta_text_about_the_script_or_the_style(assets):
    for a in assets.values():
        assert not META.search(a.description), (a.name, a.description)
        assert len(a.description.split()) <= 80


def test_a_character_description_leaves_the_neighbour_out(assets):
    edward, will = assets["EDWARD"].description, assets["WILL"].description
    assert "grey suit" in edward and "40s" in edward
    assert "hoodie" not in edward and "WILL" not in edward
    assert "red hoodie" in will and "17" in will
    assert "grey suit" not in will and "EDWARD" not in will


def test_a_list_of_names_shares_its_description_without_naming_the_others(assets):
    for name, others in (("ADA", ("BEA", "CORA")), ("BEA", ("ADA", "CORA"))):
        d = assets[name].description
        assert "yellow raincoat" in d, (name, d)
        assert not any(o in d for o in others), (name, d)


def test_a_prop_is_described_by_its_own_noun_phrase_not_its_owner(assets):
    d = assets["lantern"].description
    assert "old brass LANTERN" in d and "green with age" in d
    assert "Edward" not in d


def test_where_the_script_says_nothing_say_less(assets):
    cellar = assets["CELLAR"]
    assert len(cellar.description.split()) <= 8
    ghost = distill_builtin(ExtractedAsset(name="NIGHT WATCHMAN", type="character"),
                            parse_fountain(SCRIPT))
    assert ghost.description == "Night Watchman."
    assert ghost.confidence_score < assets["EDWARD"].confidence_score


def test_confidence_follows_what_came_from_the_script(assets):
    said = distill_builtin(ExtractedAsset(name="MUG", type="prop"), parse_fountain(SCRIPT))
    assert said.description == "A mug." and said.confidence_score <= 0.3
    assert assets["lantern"].confidence_score > said.confidence_score


def test_describe_offline_appends_the_users_guidance(assets):
    sp = parse_fountain(SCRIPT)
    bare = assets["EDWARD"].model_copy(update={"description": ""})
    got = BuiltinExtractor().distill(bare, db=None, style_name="ink", script=lambda: sp,
                                     instructions="  she is in her sixties ")
    assert got.description.startswith(assets["EDWARD"].description)
    assert got.description.endswith("She is in her sixties.")
    plain = distill_builtin(bare, sp, style_name="ink")
    assert plain.description == assets["EDWARD"].description


def test_the_look_in_the_sentence_after_the_introduction_is_kept(assets):
    d = assets["MARA"].description
    assert "27" in d and "silver hair" in d, d


def test_heading_setting_sentence_counts_kinds_and_times_in_scene_order():
    """The setting sentence from a place's headings (built once per distinct sequence of
    headings' facts): the most seen kind and times first, ties in scene order."""
    from stage5cli.extract.builtin.describe import _Settings, _times_of_day
    from stage5cli.extract.builtin.text import build_index

    assert _times_of_day("NIGHT - LATER") == ("night",)
    assert _times_of_day("DAY/NIGHT") == ("day", "night")
    assert _times_of_day("EARLY MORNING") == ("morning",)
    assert _times_of_day("CONTINUOUS") == ()
    sp = parse_fountain(
        "INT. BARN - NIGHT\n\nRain.\n\n"
        "EXT. BARN - DAY\n\nSun.\n\n"
        "INT. BARN - NIGHT\n\nRain.\n\n"
        "INT. SHED - CONTINUOUS\n\nDust.\n\n"
    )
    settings = _Settings(build_index(sp))
    assert settings.sentence([1, 2, 3]) == "An interior and an exterior, seen at night and by day."
    assert settings.sentence([2, 1]) == "An exterior and an interior, seen by day and at night."
    assert settings.sentence([1, 3]) == "An interior, seen at night."
    assert settings.sentence([4]) == "An interior."
    assert settings.sentence([99]) == ""  # no such scene: nothing to say
