"""extract/merge.py: name normalisation, alias merging, canonical names, match keys."""

from __future__ import annotations

import itertools
import json

import pytest

from stage5cli.extract.merge import match_key, merge_assets, norm_name
from stage5cli.models import ExtractedAsset, Mention


def asset(name, type="character", aliases=(), scenes=(), texts=None, context=""):
    texts = texts or [name] * len(scenes)
    return ExtractedAsset(
        name=name, type=type, aliases=list(aliases),
        mentions=[Mention(scene_number=s, text=t, context=context) for s, t in zip(scenes, texts, strict=True)],
    )


@pytest.mark.parametrize(
    "raw",
    ["THE OLD MAN", "Old Man", "old man's", "OLD MAN (V.O.)", "  the   old  MAN  ", "Old Man’s",
     "OLD MAN (CONT'D)", "The Old Man (O.S.)"],
)
def test_norm_name_variants_of_one_name(raw):
    assert norm_name(raw) == "old man"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("INT. BLOOM HOUSE - KITCHEN - NIGHT", "bloom house kitchen"),
        ("Bloom House — Kitchen", "bloom house kitchen"),
        ("EXT. RIVER - DAY", "river"),
        ("INT./EXT. CAR - MOVING - NIGHT", "car moving"),
        ("Mr. Smith", "mr smith"),
        ("O'BRIEN (CONT'D)", "o'brien"),
        ("The", "the"),  # nothing left after the article: keep the word
        ("Anna", "anna"),
        ("Intern", "intern"),  # a word starting with INT is not a heading prefix
        ("the boys' room", "boys room"),
    ],
)
def test_norm_name_cases(raw, expected):
    assert norm_name(raw) == expected


def test_variants_across_chunks_merge_with_union_of_aliases_and_mentions():
    merged = merge_assets([
        asset("THE OLD MAN", scenes=[1, 2], context="He limps."),
        asset("Old Man", aliases=["Grandpa"], scenes=[2, 5], texts=["THE OLD MAN", "Old Man"]),
        asset("old man's", scenes=[7]),
        asset("OLD MAN (V.O.)", scenes=[9]),
    ])
    assert len(merged) == 1
    a = merged[0]
    assert a.scenes == [1, 2, 5, 7, 9]
    assert {"Grandpa", "OLD MAN (V.O.)"} <= set(a.aliases)
    assert a.name.lower() not in {x.lower() for x in a.aliases}
    # (scene 2, "THE OLD MAN") appeared twice: one mention, the one with context kept
    scene2 = [m for m in a.mentions if m.scene_number == 2]
    assert len(scene2) == 1 and scene2[0].context == "He limps."


def test_different_types_never_merge():
    merged = merge_assets([asset("Lighthouse", "location", scenes=[1]),
                           asset("Lighthouse", "prop", scenes=[2])])
    assert sorted(a.type for a in merged) == ["location", "prop"]


def test_merge_is_transitive_through_aliases():
    merged = merge_assets([
        asset("Edward Bloom", aliases=["Edward"], scenes=[1]),
        asset("Ed", aliases=["Edward"], scenes=[3]),
        asset("Ed Bloom", aliases=["Ed"], scenes=[4]),
        asset("Will", scenes=[2]),
    ])
    names = {a.name: a.scenes for a in merged}
    assert len(merged) == 2
    assert names["Will"] == [2]
    (edward,) = [a for a in merged if a.name != "Will"]
    assert edward.scenes == [1, 3, 4]


def test_pronoun_aliases_do_not_merge_different_people():
    merged = merge_assets([asset("Mara", aliases=["she", "her"], scenes=[1]),
                           asset("Lena", aliases=["She"], scenes=[2])])
    assert len(merged) == 2


def test_canonical_name_is_the_most_frequent_spelling():
    merged = merge_assets([
        asset("Will Bloom", scenes=[1]),
        asset("WILL", aliases=["Will Bloom"], scenes=[2]),
        asset("Will Bloom", scenes=[3]),
    ])
    assert merged[0].name == "Will Bloom"
    assert merged[0].aliases == ["WILL"]


def test_canonical_name_drops_extension_and_prefers_mixed_case_on_ties():
    (a,) = merge_assets([asset("MARA (V.O.)", scenes=[1]), asset("Mara", scenes=[2])])
    assert a.name == "Mara"
    assert "MARA (V.O.)" in a.aliases


def test_order_is_deterministic_whatever_the_input_order():
    items = [
        asset("Lantern", "prop", scenes=[3]),
        asset("Docks", "location", scenes=[1]),
        asset("Mara", scenes=[2]),
        asset("MARA", scenes=[4]),
        asset("Kid", scenes=[1]),
    ]
    results = {
        json.dumps([a.model_dump() for a in merge_assets(list(p))], sort_keys=True)
        for p in itertools.permutations(items)
    }
    # the canonical spelling may depend on order only when frequencies tie exactly: "Mara" wins
    assert len(results) == 1
    first = merge_assets(items)
    assert [(a.type, a.name) for a in first] == [
        ("character", "Kid"), ("character", "Mara"), ("prop", "Lantern"), ("location", "Docks")]


def test_other_fields_survive_a_merge():
    a = asset("Mara", scenes=[1])
    b = asset("MARA", scenes=[2]).model_copy(update={
        "description": "A tall woman.", "confidence_score": 0.7, "is_priority": True,
        "has_conflicts": True, "conflict_details": "coat colour", "extra": {"lines": 4}})
    (m,) = merge_assets([a, b])
    assert m.description == "A tall woman." and m.confidence_score == 0.7
    assert m.is_priority and m.has_conflicts and m.conflict_details == "coat colour"
    assert m.extra == {"lines": 4}


def test_match_key_of_an_asset_and_of_a_stored_row():
    a = asset("THE OLD MAN", aliases=["Grandpa", "he"], scenes=[1])
    assert match_key(a) == {"old man", "grandpa"}
    row = {"name": "Old Man", "metadata": json.dumps({"aliases": ["Grandpa Joe"]})}
    assert match_key(row) == {"old man", "grandpa joe"}
    assert match_key({"name": "Mara", "aliases": ["M."]}) == {"mara", "m"}
    assert match_key(a) & match_key(row)


@pytest.mark.parametrize("asset", [
    ExtractedAsset(name="Kitchen", type="location", aliases=["KITCHEN AREA"],
                   mentions=[Mention(scene_number=1, text="KITCHEN"),
                             Mention(scene_number=3, text="kitchen area")]),
    ExtractedAsset(name="BOB (V.O.)", type="character"),
    ExtractedAsset(name="Bob's", type="character"),
    ExtractedAsset(name="Bob", type="character", aliases=["BOB", "Old  Bob", " Robert", ""]),
    ExtractedAsset(name="Bob", type="character", aliases=["Robert", "ROBERT"]),
    ExtractedAsset(name="Bob", type="character",
                   mentions=[Mention(scene_number=4, text="BOB"),
                             Mention(scene_number=2, text="Bob")]),
    ExtractedAsset(name="Bob", type="character",
                   mentions=[Mention(scene_number=2, text="BOB"),
                             Mention(scene_number=2, text="bob ", context="Bob waves.")]),
    ExtractedAsset(name="Lamp", type="prop", conflict_details="red; blue", has_conflicts=True,
                   extra={"source": "caps"}),
])
def test_an_asset_needing_no_merge_comes_back_as_the_full_merge_would_make_it(asset):
    """The single-asset shortcut (returned unchanged when already tidy) gives exactly what
    the general combine gives, for tidy assets and for every kind of untidiness."""
    import stage5cli.extract.merge as merge

    (fast,) = merge_assets([asset.model_copy(deep=True)])
    full = merge._combine_all([asset.model_copy(deep=True)])
    assert fast.model_dump() == full.model_dump()


def test_merging_never_changes_the_input_mentions():
    first = ExtractedAsset(name="Bob", type="character",
                           mentions=[Mention(scene_number=2, text="BOB")])
    second = ExtractedAsset(name="BOB", type="character",
                            mentions=[Mention(scene_number=2, text="bob", context="Bob waves.")])
    (merged,) = merge_assets([first, second])
    assert merged.mentions[0].context == "Bob waves."
    assert first.mentions[0].context == ""


def test_whole_words_finds_what_the_equivalent_regex_finds(monkeypatch):
    """WholeWords' str.find path, its regex path and its lookup by first word agree with the
    plain regex on random forms and texts (apostrophes, spaces, digits, underscores, accents,
    overlaps)."""
    import random
    import re

    from stage5cli.extract.names import WholeWords

    rng = random.Random(7)
    alphabet = ["A", "B", "a", "é", "1", "_", "'", " ", " ", ".", "-", "’"]
    # overlaps: a later word inside a longer match, a shorter form where the longer one fails
    cases = [({"A B", "B"}, "A B B"), ({"AB C", "AB", "C"}, "AB Cx C"), ({"A'B", "B"}, "A'B")]
    for n in range(800):
        forms = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
                 for _ in range(rng.randint(1, 20))}
        if n % 2:  # the lookup by first word takes only forms that start with a word character
            forms = {f for f in forms if re.match(r"\w", f)} or {"A"}
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        cases.append((forms, text))
    for forms, text in cases:
        alternation = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        plain = re.compile(r"(?<![\w'])(?:" + alternation + r")(?![\w])")
        want = [(m.span(), m.group(0)) for m in plain.finditer(text)]
        # the regex path, the str.find path, the lookup by first word (regex when it can't)
        for few, many in ((0, 1000), (1000, 1000), (0, 0)):
            monkeypatch.setattr(WholeWords, "FEW", few)
            monkeypatch.setattr(WholeWords, "MANY", many)
            got = WholeWords(forms)
            assert [(m.span(), m.group(0)) for m in got.finditer(text)] == want, (forms, text)
            first = got.search(text)
            assert (first.span() if first else None) == (want[0][0] if want else None)


def test_mentions_built_bounded_are_what_bound_mentions_makes():
    import random

    from stage5cli.extract.builtin import _bounded
    from stage5cli.extract.builtin.describe import MAX_CONTEXT_MENTIONS, bound_mentions

    rng = random.Random(3)
    for n in (0, 1, MAX_CONTEXT_MENTIONS, MAX_CONTEXT_MENTIONS + 1, 40):
        rows = [(rng.randint(1, 9), f"t{i}", rng.choice(["", f"c{i}"])) for i in range(n)]
        want = bound_mentions([Mention(scene_number=s, text=t, context=c) for s, t, c in rows])
        assert _bounded(list(rows)) == want


def test_memo_makes_each_value_once():
    from stage5cli.extract.names import Memo

    calls: list[str] = []
    memo = Memo(lambda k: calls.append(k) or k.upper())
    assert [memo["a"], memo["b"], memo["a"]] == ["A", "B", "A"]
    assert calls == ["a", "b"] and dict(memo) == {"a": "A", "b": "B"}
    assert memo.get("c") is None and "c" not in memo  # only indexing makes a value
