"""Failure classes of the built-in extractor (issue 15), each on a small script written here,
and its bounds on work and memory (issue 14 item 3)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from stage5cli.extract.builtin import extract_builtin, find_assets
from stage5cli.extract.builtin.places import forced_place, split_location
from stage5cli.extract.names import literal_alternation
from stage5cli.screenplay import loads


def _assets(text: str, kind: str | None = None):
    sp = loads(textwrap.dedent(text).encode(), name="t.fountain")
    got = find_assets(sp)
    return [a for a in got if kind is None or a.type == kind]


def _by_name(assets):
    return {a.name: a for a in assets}


def test_non_ascii_capitals_make_one_character_and_keep_their_letters():
    chars = _by_name(_assets("""
        INT. KITCHEN - NIGHT

        INÉS DELGADO (50s), grey-haired, stirs a pot. BJÖRN (30s) and ŁUKASZ (20s) watch.

        INÉS
        Sit down.

        BJÖRN
        No.

        ŁUKASZ
        Yes.
        """, "character"))
    assert set(chars) == {"INÉS", "BJÖRN", "ŁUKASZ"}, chars
    assert "INÉS DELGADO" in chars["INÉS"].aliases
    assert not any("IN S" in n or "BJ RN" in n for n in chars)


def test_nicknames_in_introductions_join_their_cues():
    chars = _by_name(_assets("""
        EXT. GARDEN - DAY

        ANNABEL "BELL" CROSS (20s), freckled, climbs the fence. A K-9 UNIT ("REX") barks.
        YOUNG TOM'S MOTHER (40s) waves from the porch.

        BELL
        Here, boy!

        REX
        Woof!

        MOTHER
        Tom, dinner!
        """, "character"))
    assert set(chars) == {"BELL", "REX", "MOTHER"}, {k: v.aliases for k, v in chars.items()}
    assert "ANNABEL CROSS" in chars["BELL"].aliases
    assert "K-9 UNIT" in chars["REX"].aliases
    assert "YOUNG TOM'S MOTHER" in chars["MOTHER"].aliases


def test_a_nickname_introduction_joins_a_titled_speaker_by_the_core_of_the_cue():
    """BOB "BOBBY" SMITH introduces the speaker DR. BOB (whose core word is BOB): the names
    join that character, not a new BOB made up for them."""
    chars = _by_name(_assets("""
        INT. CLINIC - DAY

        BOB "BOBBY" SMITH, 40s, in a white coat, checks the chart.

        DR. BOB
        Next.
        """, "character"))
    assert len(chars) == 1, {k: v.aliases for k, v in chars.items()}
    (only,) = chars.values()
    assert {"BOB SMITH", "BOBBY"} <= set(only.aliases), only


@pytest.mark.parametrize("heading, place", [
    ("INT. GARDEN - BACK TO PRESENT", "GARDEN"),
    ("INT. ATTIC - FLASHBACK", "ATTIC"),
    ("INT. ATTIC - DREAM SEQUENCE", "ATTIC"),
    ("INT. LIBRARY (IN HER MEMORY)", "LIBRARY"),
    ("EXT. GARDEN - TWO YEARS LATER", "GARDEN"),
    ("INT. LIBRARY MOMENTS LATER", "LIBRARY"),
    ("INT. HALLWAY – NIGHT", "HALLWAY"),
    ("INT. KITCHEN, EVENING", "KITCHEN"),
    ("INT. PIER — A FEW MINUTES LATER", "PIER"),
    ("EXT. BARN - IN HIS IMAGINATION", "BARN"),
    ("INT. CELLAR [NIGHTMARE]", "CELLAR"),
    ("INT. ROOM 12 - DAY", "ROOM 12"),
    ("EXT. WITCH'S HOUSE - GATE - NIGHT", "WITCH'S HOUSE"),  # a feature of the place
    ("INT. LIGHTHOUSE - LAMP ROOM - NIGHT", "LIGHTHOUSE - LAMP ROOM"),  # a room is its own
])
def test_heading_tags_are_stripped_by_rule(heading, place):
    locs = _assets(f"""
        {heading}

        Someone waits.
        """, "location")
    assert [a.name for a in locs] == [place]


def test_forced_headings_that_name_a_place_make_a_location_and_shots_none():
    locs = _assets("""
        EXT. FARM - DAY

        Wind.

        .BEHIND THE BARN

        Hay.

        .THE BELL TOWER

        Bells.

        .INSIDE THE WARDROBE

        Coats.

        .SNIPER SCOPE POV

        Crosshairs.

        .INSERT - HER HAND

        A ring.

        .TITLE CARD:

        Text.

        .CLOSE ON

        A face.

        .ANGLE ON THE GATE

        A face.

        .BACK TO SCENE

        Quiet.

        .SCOTT

        He waits.

        .ON THE TV

        News.

        .SCOTT REENTERING THE BARN

        Smoke.
        """, "location")
    assert sorted(a.name for a in locs) == ["BEHIND THE BARN", "BELL TOWER", "FARM",
                                            "INSIDE THE WARDROBE"]


def test_forced_heading_naming_a_place_by_its_noun_joins_the_latest_such_place():
    locs = _by_name(_assets("""
        INT. SCOTT'S APARTMENT - DAY

        Boxes.

        INT. HALLWAY - DAY

        Mail.

        .BACK IN THE APARTMENT

        Scott unpacks.
        """, "location"))
    assert set(locs) == {"SCOTT'S APARTMENT", "HALLWAY"}
    assert locs["SCOTT'S APARTMENT"].scenes == [1, 3]


def test_forced_place_rule():
    assert forced_place("UNDER THE PIER") and forced_place("NAK'S BEDROOM")
    assert not forced_place("UNDER THE CHASSIS OF THE MAZDA")
    assert not forced_place("THE PAIR, DRINKING BEER IN THE LIVING ROOM")
    assert split_location("HALLWAY - BACK TO PRESENT") == ("HALLWAY", [])


def test_an_age_goes_to_the_nearest_name_only():
    got = extract_builtin(loads(textwrap.dedent("""
        INT. OFFICE - DAY

        MAYA (16) and her mother JOAN (40s) sit. MAYA AND JOAN (40s) stand.

        JOAN
        Sit.

        MAYA
        No.

        INT. OFFICE - NIGHT

        Joan, 42, waits for Maya, 17.
        """).encode(), name="t.fountain"))
    chars = {a.name: a for a in got if a.type == "character"}
    assert "age" not in chars["JOAN"].conflict_details
    assert "age" not in chars["MAYA"].conflict_details


def test_literal_alternation_matches_like_a_sorted_alternation():
    forms = ["BOB", "BOB SMITH", "BO", "SMITH", "DR. SMITH", "É", "ÉMILE"]
    plain = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
    trie = re.compile(literal_alternation(forms))
    text = "BOB SMITH met BO and DR. SMITH; ÉMILE É BOBBY"
    assert [m.group() for m in trie.finditer(text)] == [m.group() for m in plain.finditer(text)]


def test_work_per_capitalised_span_is_bounded():
    """The text a span's rules read is a window, not the paragraph before it: the total grows
    linearly with the paragraph (it grew quadratically: 5 MB -> 24 GB)."""
    from stage5cli.extract.builtin.text import WINDOW, build_index

    para = " ".join(f"the man sees a RED LAMP{i % 7} near BOB." for i in range(3000))
    sp = loads(f"INT. ROOM - DAY\n\n{para}\n".encode(), name="t.fountain")
    index = build_index(sp)
    assert len(index.caps) > 3000
    total = sum(len(s.before) + len(s.after) for s in index.caps)
    assert total <= 2 * WINDOW * len(index.caps)


@pytest.mark.slow
def test_a_one_megabyte_paragraph_extracts_within_a_memory_limit():
    code = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
        from stage5cli.screenplay import loads
        from stage5cli.extract.builtin import extract_builtin
        para = " ".join(f"the man walks to a RED LAMP{i % 13} and BOB DYLAN, 40s, looks at her "
                        f"KEY. ZED{i % 11} QUITS then" for i in range(6_000))  # ~0.5 MB
        sp = loads(("INT. ROOM - DAY\\n\\n" + para + "\\n").encode(), name="big.fountain")
        print(len(extract_builtin(sp)))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_label_the_text_then_names_is_that_character():
    chars = _by_name(_assets("""
        EXT. OVERLOOK - DAY

        A sedan stops. The DRIVER, a man in his forties, unwraps a sandwich. This is MILO KRANTZ.

        MILO KRANTZ
        Lunch.
        """, "character"))
    assert set(chars) == {"MILO KRANTZ"}, chars
    assert "DRIVER" in chars["MILO KRANTZ"].aliases


def test_a_bare_role_noun_is_the_one_fuller_role_of_its_scene():
    """"a HEAVYSET NURSE" ... cue NURSE in that scene is one person; with two fuller roles
    ending in the same noun (YOUNG WOMAN, ASIAN WOMAN) the bare WOMAN stays apart."""
    chars = _assets("""
        INT. WARD - NIGHT

        A HEAVYSET NURSE (50s) checks the chart. A PIANO STUDENT waits by the door.

        NURSE
        Visiting hours are over.

        STUDENT
        I know.

        EXT. STREET - DAY

        A YOUNG WOMAN and an ASIAN WOMAN cross.

        WOMAN
        Taxi!

        EXT. SCHOOL FIELD - DAY

        On the sidelines, a PRETTY GIRL cheers.

        GIRL
        Go, go!

        INT. GYM - NIGHT

        A LITTLE GIRL (6) skips rope.
        """, "character")
    names = {a.name: set(a.aliases) for a in chars}
    nurse = next(n for n, al in names.items() if "NURSE" in {n, *al} and n != "STUDENT")
    assert {"HEAVYSET NURSE", "NURSE"} <= {nurse, *names[nurse]}
    student = next(n for n, al in names.items() if "STUDENT" in {n, *al})
    assert {"PIANO STUDENT", "STUDENT"} <= {student, *names[student]}
    assert "WOMAN" in names  # two candidates: not guessed, and they stay two people
    assert not ({"YOUNG WOMAN", "ASIAN WOMAN"} & names["WOMAN"])
    assert "ASIAN WOMAN" not in names.get("YOUNG WOMAN", set())
    # a fuller role in another scene (the LITTLE GIRL) does not make the scene's one ambiguous
    girl = next(n for n, al in names.items() if "GIRL" in {n, *al})
    assert {"PRETTY GIRL", "GIRL"} <= {girl, *names[girl]}
    assert "LITTLE GIRL" not in {girl, *names[girl]}


def _described(text: str) -> dict:
    sp = loads(textwrap.dedent(text).encode(), name="t.fountain")
    return {a.name: a for a in extract_builtin(sp)}


def test_a_titled_name_doing_something_in_action_is_a_character():
    """"Mr. Hoff takes both rounds": a title and a surname followed by a present-tense verb is
    someone on screen, even never written in capitals; a titled name in a figure of speech or
    only in dialogue is not."""
    chars = _by_name(_assets("""
        INT. LOBBY - DAY

        NAK crosses the lobby. Mrs. Álvarez waits by the lifts. Not to get all Dr. Seuss on
        you, but Nak has a gun.

        NAK
        I'm here to see Mr. Hoff. And Professor Quill.

        Mr. Hoff is at the railing. Mr. Hoff takes both rounds and topples over.
        """, "character"))
    assert {"NAK", "MR. HOFF", "MRS. ÁLVAREZ"} <= set(chars), chars
    assert not any("SEUSS" in n or "QUILL" in n for n in chars)
    assert chars["MR. HOFF"].scenes == [1]


def test_a_creature_called_by_a_capitalised_epithet_is_a_character():
    """"This is The Beast." ... "the Beast spits out the ring": a creature noun capitalised
    more than once, at least once mid-sentence, is a name; a capitalised species seen once
    ("the Dog's language") or in lower case is not."""
    chars = _by_name(_assets("""
        EXT. RIVER - DAY

        We're underwater, watching a fat catfish swim along. This is The Beast.

        The Beast swims past a lure. ED (20s) wades in and grabs hold of

        THE BEAST.

        A beat, then the Beast spits out a gold ring. A dog barks on the bank. It translates
        the Dog's language.

        ED
        Got you.
        """, "character"))
    assert "BEAST" in {n.removeprefix("THE ") for n in chars}, chars
    beast = next(a for n, a in chars.items() if n.endswith("BEAST"))
    assert beast.scenes == [1]
    assert not any("DOG" in n for n in chars)


def test_the_sentences_after_an_introduction_that_go_on_by_pronoun_describe_that_person():
    """"A forty-year old man named BEAMEN comes out to greet Edward. Friendly but a little
    drunk, he's ...": the following sentences in the same person's pronoun are theirs (cut
    before another character's name); a sentence about someone else ends the run."""
    got = _described("""
        EXT. TOWN SQUARE - DAY

        EDWARD (20s) arrives.

        A forty-year old man named BEAMEN comes out of the seed store to greet Edward. Friendly
        but a little drunk, he's the closest thing the town has to a mayor.

        BEAMEN
        Welcome.

        EXT. RIVER - DAY

        It's then that a WOMAN emerges at the far side of the river. We never see her face.
        She stands with her bare back to Edward, squeezing the water out of her golden hair.
        Edward is breathless, wearing a torn red jacket.

        WOMAN
        Who's there?

        INT. BAR - NIGHT

        The bartender waves at Carmen.

        CARMEN
        One more.
        """)
    # a name ending in -men is no group of men when the text uses it as a name
    assert {"BEAMEN", "CARMEN"} <= set(got)
    beamen = got["BEAMEN"].description
    assert "forty-year old man named BEAMEN" in beamen and "drunk" in beamen
    assert "Edward" not in beamen
    woman = got["WOMAN"].description
    assert "We never see her face" in woman and "bare back" in woman
    assert "Edward" not in woman and "red jacket" not in woman


def test_a_naming_sentence_takes_the_description_before_it():
    """"A man in a grey suit ... This must be JACOB BILLUPS." and "a woman, not young but
    certainly younger than Billups ... Her name is NANCY": the look before the naming line is
    the named person's, cut before anyone else's name."""
    got = _described("""
        INT. HOTEL ROOM - DAY

        A man in a grey suit who looks like he's fifty sits on the bed. Those of us who can do
        math will figure that this must be JACOB BILLUPS.

        BILLUPS
        I understand.

        INT. BATHROOM - DAY

        The person he's talking to -- a woman, not young but certainly younger than Billups.
        Her name is NANCY.

        NANCY
        Who was that?
        """)
    assert "grey suit" in got["BILLUPS"].description
    nancy = got["NANCY"].description
    assert "not young" in nancy and "Billups" not in nancy


def test_a_thing_that_speaks_is_introduced_by_its_capitalised_phrase():
    """The cue PRINTER and "a weathered LASER PRINTER. It looks like it's seen better days":
    the object's introduction describes the character it also is."""
    got = _described("""
        INT. OFFICE - DAY

        Perched on the oak desk is a weathered LASER PRINTER. It looks like it's seen better
        days.

        MIKE (40s) enters.

        PRINTER
        Beep.

        MIKE
        Not again.
        """)
    printer = got["PRINTER"]
    assert printer.type == "character"
    assert "weathered LASER PRINTER" in printer.description and "seen better" in printer.description
    assert "LASER PRINTER" in printer.aliases
