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


# ---- long sentences: the clause cutter and the subject test are bounded per name (issue 14) --

def _old_own_clause_merge(sentence, mine, others):
    """The list-of-names merge as first written (a scan of every other name per step)."""
    from stage5cli.extract.builtin.describe import _NAME_LIST_GAP

    others = [o for o in others if not any(a <= o[0] < b for a, b in mine)]
    lo_i, hi_i = mine[0]
    changed = True
    while changed:
        changed = False
        for o in list(others):
            gap = sentence[hi_i : o[0]] if o[0] >= hi_i else sentence[o[1] : lo_i]
            if _NAME_LIST_GAP.match(gap):
                others.remove(o)
                lo_i, hi_i = min(lo_i, o[0]), max(hi_i, o[1])
                changed = True
    return (lo_i, hi_i), others


def _old_is_subject_lead(text, sentence_start, start):
    from stage5cli.extract.builtin.describe import _SUBJECT_BEFORE

    lead = text[sentence_start:start].strip().upper().split()
    if all(w in ("THE", "YOUNG", "OLD", "LITTLE", "A", "AN") for w in lead):
        return "lead"
    before = text[sentence_start:start].rstrip()
    return before.endswith((",", ";", "--")) or (bool(lead) and lead[-1] in _SUBJECT_BEFORE)


def test_the_bounded_clause_cutter_and_subject_test_answer_as_the_scans_did():
    """Random sentences of names, list gaps, lead words and long words: the bisecting versions
    of the own-clause list merge and of _is_subject's tests give what the per-name scans gave
    (they were quadratic in a sentence naming thousands)."""
    import random

    from stage5cli.extract.builtin import describe as d
    from stage5cli.extract.names import WholeWords

    rng = random.Random(14)
    pieces = ["MARA", "ROOK", "ODO", "MARA ROOK", ", ", " and ", " & ", " ", "the ", "The ",
              "young ", "AND ", "then ", "(", ")", ",", "; ", "--", "waits", "x" * 60, "  "]
    own, people = WholeWords({"MARA"}), WholeWords({"MARA", "ROOK", "ODO", "MARA ROOK"})
    merged = 0
    for _ in range(5000):
        sentence = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        mine = [m.span() for m in own.finditer(sentence)]
        others = [m.span() for m in people.finditer(sentence) if m.group(0) != "MARA"]
        if mine and others:
            (lo, hi), left = _old_own_clause_merge(sentence, mine, others)
            shared = sentence[:lo] + sentence[mine[0][0]:mine[0][1]] + sentence[hi:]
            want = (d._own_clauses(shared, own, people, {"MARA"}) if (lo, hi) != mine[0]
                    else None)
            got = d._own_clauses(sentence, own, people, {"MARA"})
            if want is not None:
                merged += 1
                assert got == want, sentence
            elif not left:
                assert got == sentence, sentence
        others_at = d.other_words(sentence)
        for m in people.finditer(sentence):
            for ss in {0, m.start() // 2, max(0, m.start() - 1)}:
                old = _old_is_subject_lead(sentence, ss, m.start())
                assert d._only_lead_words(sentence, ss, m.start(), others_at) == (old == "lead"), (
                    sentence, ss)
                if old != "lead":
                    assert d._starts_clause(sentence, ss, m.start()) == old, (sentence, ss)
    assert merged > 20  # the list merge itself was exercised


def test_a_sentence_that_never_ends_is_read_in_bounded_pieces():
    """A paragraph with no sentence end (each stop followed by a lower-case word) is read as
    pieces of at most MAX_SENTENCE characters, cut after a comma where there is one, that
    together hold all of its words; ordinary sentences are left whole."""
    from stage5cli.extract.builtin.text import MAX_SENTENCE, sentences

    unit = "then MARA, in a red coat, waits by the door. "
    text = (unit * 400).strip()
    got = sentences(text)
    assert len(got) > 1 and all(len(s) <= MAX_SENTENCE for s in got)
    assert " ".join(got).split() == text.split()
    assert all(s.endswith((",", ".")) for s in got)  # cut at clause punctuation, not mid-phrase
    assert sentences("x" * (MAX_SENTENCE * 2 + 5)) == ["x" * MAX_SENTENCE] * 2 + ["x" * 5]
    normal = "MARA waits. She lifts the LANTERN, slowly. Then she goes."
    assert sentences(normal) == ["MARA waits.", "She lifts the LANTERN, slowly.", "Then she goes."]


def test_thousands_of_names_in_one_never_ending_sentence_are_each_described():
    """Each of hundreds of characters named in one endless sentence still gets its own clause
    (the pieces keep what the sentence says about each), and its mention quotes its piece."""
    names = [f"ZED{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(300)]
    cues = "".join(f"{n}\nHi.\n\n" for n in names)
    body = " ".join(f"then {n}, in a red coat, waits." for n in names) * 3
    sp = parse_fountain(f"INT. ROOM - DAY\n\n{cues}{body}\n")
    got = {a.name: a for a in extract_builtin(sp) if a.type == "character"}
    assert set(got) == {n.title() for n in names} or set(got) == set(names)
    for a in got.values():
        assert "red coat" in a.description, (a.name, a.description)
        assert len(a.mentions[0].context) <= 240


def test_quote_positions_are_kept_per_text_object_and_right_for_an_equal_copy():
    """The quote positions are remembered by the identity of the text (an equal paragraph of a
    second extraction is not compared in full on every call), and are right for each text."""
    from stage5cli.extract.builtin import text as t

    first = 'He says "STOP" twice, ' * 50
    copy = "".join(list(first))  # equal, another object
    assert copy == first and copy is not first
    assert t.in_quotes(first, first.index("STOP")) and t.in_quotes(copy, copy.index("STOP"))
    assert not t.in_quotes(first, 0) and not t.in_quotes(copy, 2)
    assert t._quote_positions(first) is t._quote_positions(first)  # kept
    assert t._quote_positions(copy) == t._quote_positions(first)
    for i in range(20):  # at most a few are kept
        t._quote_positions(f'"{i}"')
    assert len(t._QUOTES) <= 8
