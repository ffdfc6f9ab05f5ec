"""Issue 15, class 9: the built-in extractor's word lists hold general English and screenplay
conventions only. Each entry is checked against a general English lexicon (lemminflect ships
its word data inside the wheel); what that lexicon lacks must be on the allow-list below, with
the reason it is general. Words that occur only in the corpus scripts (misspellings, one
script's sound effects, car models) are neither."""

from __future__ import annotations

import pytest

from stage5cli.extract.builtin import lexicon

_REASONS = {
    "function word or number (closed class)": """a an the every against and at beside but for
        from into of onto than toward towards with although because if nor unless until eight
        eighth eleven five four nine seven six sixth ten tenth three twelve hey ok""",
    "screenplay convention (sluglines, transitions, camera)": """int ext est estd pov intercut
        closeup flashcut flashcuts prelap""",
    "title or its abbreviation": "dr mr mrs ms prof capt det lt sgt madame auntie",
    "onomatopoeia common in action lines": """bleep dong kaboom splat squish squishing swoosh
        thunk tock""",
    "everyday noun or adjective the inflection lexicon lacks": """beanie beret hoodie parka
        kimono trenchcoat t sunglasses tattoo tattoos tattooed turquoise gothic victorian bible
        cellphone smartphone speakerphone clarinet harmonica crowbar lawnmower limo locket mic
        satchel taser tiara tv ukulele walkie talkie reflection townfolk townsfolk cop copilot
        cowgirl deliveryman doc duchess emcee fiance fiancee gal hitman imam ringmaster sherpa
        suv rv hatchback motorhome snowcat speedboat tugboat""",
}
ALLOWED = {w: reason for reason, words in _REASONS.items() for w in words.split()}
# entries removed in issue 15 because only the corpus scripts use them; they must not return
CORPUS_ONLY = """SHEPHARD TOTER KRUMF PTEW FWOOSH LANDCRUISER GTI CHIHUAHUA DAFFODIL TWEEDY TOUPEED
    GLOWY HAKAMA GI PHRASEBOOK SKIMMER OLDTIMER""".split()


def _entries() -> list[tuple[str, str]]:
    out = []
    for name in dir(lexicon):
        value = getattr(lexicon, name)
        if not isinstance(value, frozenset):
            continue
        for entry in value:
            for phrase in entry if isinstance(entry, tuple) else (entry,):
                out.append((name, phrase))
    return out


def test_corpus_only_entries_are_gone():
    words = {w for _, e in _entries() for w in e.split()}
    assert not set(CORPUS_ONLY) & words


def test_every_lexicon_entry_is_general_english():
    lemminflect = pytest.importorskip("lemminflect")

    def known(word: str) -> bool:
        return bool(lemminflect.getAllLemmas(word) or lemminflect.getAllInflections(word)
                    or lemminflect.getAllLemmas(word.capitalize()))

    unknown = []
    for name, entry in _entries():
        for part in entry.replace("-", " ").split():
            word = part.strip(".'").lower()
            if not word or any(c.isdigit() for c in word):
                continue
            if not known(word) and word not in ALLOWED:
                unknown.append(f"{name}: {word}")
    assert not unknown, "not general English; delete it or allow it with a reason: " + ", ".join(
        sorted(unknown))


def test_allow_list_holds_only_entries_in_use():
    used = {p.strip(".'").lower() for _, e in _entries() for p in e.replace("-", " ").split()}
    assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)
