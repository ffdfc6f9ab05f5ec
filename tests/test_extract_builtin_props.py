"""Issue 15, the built-in extractor's props: each failure class on a small script written here."""

from __future__ import annotations

import pytest

from stage5cli.extract.builtin import extract_builtin
from stage5cli.extract.builtin.lexicon import singular
from stage5cli.screenplay import parse_fountain

FARM = """\
Title: Props Test

INT. FARMHOUSE KITCHEN - DAY

MARTHA GREEN (60s), in a flour-dusted apron, sets a BIRTHDAY CAKE on the table. A boy brings \
in a TELEGRAM.

MARTHA
Read it to me.

On the shelf: a ROTARY PHONE, VINYL RECORDS and a POLAROID CAMERA.

A sign over the door: HARGROVE & SONS, SINCE 1921.

Martha picks up the truck keys and pockets them.

EXT. BARN - DAY

Stacks of BARRELS line the wall. Martha grabs the truck keys from the nail. A troupe of \
STILT-WALKING FIREBREATHERS bows.

MARTHA
Where is that fountain pen?

She opens a drawer and holds the fountain pen up to the light.

INT. PICKUP TRUCK - NIGHT

Martha drives. The truck keys dangle from the ignition. She hands the fountain pen to the dog.

MARTHA
Nearly home.
"""


def _props(text: str) -> dict[str, object]:
    return {a.name.lower(): a for a in extract_builtin(parse_fountain(text)) if a.type == "prop"}


@pytest.fixture(scope="module")
def farm():
    return extract_builtin(parse_fountain(FARM))


def _farm_props(farm) -> dict:
    return {a.name.lower(): a for a in farm if a.type == "prop"}


def test_caps_common_nouns_and_lists_are_props_each_whole(farm):
    props = _farm_props(farm)
    for name in ("birthday cake", "telegram", "rotary phone", "vinyl records", "polaroid camera",
                 "barrels"):
        assert name in props, (name, sorted(props))
    # a list item is its whole noun phrase, never a bare head alone
    assert "record" not in props and "camera" not in props


def test_lower_case_key_props_handled_in_several_scenes(farm):
    props = _farm_props(farm)
    assert "truck keys" in props and "fountain pen" in props, sorted(props)
    keys = props["truck keys"]
    assert {m.scene_number for m in keys.mentions} >= {1, 2}


def test_junk_props_from_signs_and_groups_are_not_props(farm):
    props = _farm_props(farm)
    for junk in ("since", "sons", "hargrove sons", "firebreathers", "stilt-walking firebreathers"):
        assert junk not in props, (junk, sorted(props))


def test_vehicle_heading_and_its_prop_are_linked(farm):
    props = _farm_props(farm)
    [truck] = [a for a in farm if a.type == "location" and a.name == "PICKUP TRUCK"]
    vehicle = [p for p in props.values() if p.extra.get("set") == "PICKUP TRUCK"]
    assert len(vehicle) == 1, sorted(props)
    assert truck.extra.get("vehicle") == vehicle[0].name
    # one vehicle: no second, unlinked truck prop
    assert not [p for n, p in props.items() if "truck" in n.split()[-1:] and p is not vehicle[0]]


def test_a_vehicle_the_heading_drives_becomes_a_linked_prop():
    props = _props(
        "INT. LANDCRUISER - DRIVING - NIGHT\n\nScott stares out at the rain.\n\nSCOTT\nHome.\n"
    )
    assert any(p.extra.get("set") == "LANDCRUISER" for p in props.values()), sorted(props)


def test_a_vehicle_nobody_names_or_drives_stays_a_set():
    props = _props("INT. OLD BUS - NIGHT\n\nRain on the windows.\n\nJO\nLate again.\n")
    assert not props, sorted(props)


@pytest.mark.parametrize(
    ("plural", "one"),
    [("LENS", "LENS"), ("SERIES", "SERIES"), ("THERMOS", "THERMOS"), ("CACTUS", "CACTUS"),
     ("CRISIS", "CRISIS"), ("GLASS", "GLASS"), ("BARRELS", "BARREL"), ("KNIVES", "KNIFE"),
     ("GLOVES", "GLOVE"), ("BOXES", "BOX"), ("photos", "photo"), ("heroes", "hero"),
     ("cookies", "cookie"), ("berries", "berry"), ("shoes", "shoe"), ("TEETH", "TOOTH"),
     ("matches", "match"), ("keys", "key")],
)
def test_singular_keeps_words_that_end_in_s(plural, one):
    assert singular(plural) == one


def test_bad_singulars_never_become_aliases():
    props = _props(
        "INT. LAB - DAY\n\nDr. Oduya lifts a cracked LENS from a box. She opens her red THERMOS.\n\n"
        "ODUYA\nTea.\n"
    )
    names = {n for p in props.values() for n in [p.name.lower(), *(x.lower() for x in p.aliases)]}
    assert {"lens", "thermos", "red thermos"} & names, sorted(names)
    assert not {"len", "thermo", "red thermo"} & names, sorted(names)


ALL_CAPS = """\
INT. BARN - NIGHT

THE WIND HOWLS. JOHN GRABS THE LANTERN AND RUNS TO THE DOOR.

JOHN
WHO IS THERE?

EXT. FIELD - NIGHT

JOHN DROPS THE LANTERN. A HORSE SCREAMS IN THE DARK.
"""
NO_CUES = """\
EXT. BEACH - DAY

Waves roll in. A child builds a sand castle with a red bucket and fills the bucket again.

EXT. BEACH - NIGHT

The bucket lies on its side. The tide takes it.
"""
SPANISH = """\
INT. COCINA DE INÉS - NOCHE

INÉS DELGADO (50s), con un delantal azul, corta cebollas. Sobre la mesa: una CAFETERA, \
una BOTELLA DE VINO y el TELÉFONO.

INÉS
¿Quién llama a esta hora?

EXT. STRAẞE VOR DEM HAUS - TAG

Der alte Mann öffnet das GROẞE TOR. Ein Fußball rollt über die Straße.

JÜRGEN
Grüß Gott.

INT. CAFÉ DES AMIS - SOIR

Élodie pose une TASSE sur le comptoir. Le GARÇON essuie un verre.

ÉLODIE
Merci, François.
"""


@pytest.mark.parametrize("text", [ALL_CAPS, NO_CUES, SPANISH], ids=["all-caps", "no-cues", "i18n"])
def test_bad_input_completes_with_sensible_output(text):
    assets = extract_builtin(parse_fountain(text))
    assert any(a.type == "location" for a in assets)
    for a in assets:
        assert a.name.strip() and a.description.strip(), a
        assert "script" not in a.description.lower()


def test_all_caps_script_does_not_make_every_caps_word_a_prop():
    props = _props(ALL_CAPS)
    assert len(props) <= 3, sorted(props)
    assert not {"wind", "who", "dark", "door"} & set(props), sorted(props)
    # an all-caps action line is not one long prop name
    assert "lantern" in props and not any(len(n.split()) > 2 for n in props), sorted(props)


def test_no_cues_script_still_finds_the_handled_object():
    assert "bucket" in " ".join(_props(NO_CUES)), sorted(_props(NO_CUES))


RECURRING = """\
Title: Recurring Nouns

INT. STUDY HALL - NIGHT

Students sit among bags, books, pencils and notebooks. Omar dozes over his book.

A lantern hangs over the table. Rain taps out the sound of a snare drum.

OMAR
Did you hear that?

The lantern flickers. The rain makes snare drum sounds on the roof.

EXT. YARD - NIGHT

The lantern swings in the wind. Thunder rolls like a drum rhythm. More books pile up by the \
door.

OMAR
Books everywhere.
"""


def test_a_recurring_word_is_not_a_prop_unless_the_action_keeps_showing_one_object():
    props = _props(RECURRING)
    # shown three times as one object: a prop
    assert "lantern" in props, sorted(props)
    # plurals in lists, the sound of a drum, drum rhythm, books talked about: not a story object
    assert "book" not in props and "drum" not in props, sorted(props)


TWINS = """\
Title: Twins

INT. HALLWAY - DAY

Ada takes a RED UMBRELLA from the stand. Ben takes a BLUE UMBRELLA.

ADA
Mine is the red one.

She opens the umbrella. Ben slips off his wedding ring and puts it in a bowl.

INT. LIVING ROOM - NIGHT

Ada grabs the remote and mutes the TV. She drops the remote on the couch.

ADA
Where's my engagement ring?

Ben holds up her engagement ring. Ada picks up the remote control and switches it off.
"""


def test_one_head_two_objects_are_two_props_and_a_compound_names_its_prop():
    props = _props(TWINS)
    # two colours of one capitalised head: two objects; the bare noun stays with the first
    assert "red umbrella" in props and "blue umbrella" in props, sorted(props)
    assert "umbrella" in props["red umbrella"].aliases
    assert "umbrella" not in props["blue umbrella"].aliases
    # two two-word names of one noun: two rings
    assert "wedding ring" in props and "engagement ring" in props, sorted(props)
    # "the remote" and "a remote control": one prop, named by the fuller name
    assert "remote control" in props and "remote" not in props, sorted(props)


BRANDS = """\
Title: Brands

EXT. GRAVEL LOT - DAY

LOU (40s) leans on a battered old Ford pickup. A brown Unicorn lifts her Unicorn horn.

LOU
Get in.

Lou checks her Nikon camera, then climbs into the truck.

EXT. HIGHWAY - DAY

The truck rattles past a billboard. Lou waves from the truck.
"""


def test_a_mixed_case_make_before_an_object_noun_is_a_branded_prop():
    props = _props(BRANDS)
    assert "ford pickup" in props and "nikon camera" in props, sorted(props)
    # "the truck" is the pickup, not a second vehicle
    assert "truck" in props["ford pickup"].aliases and "truck" not in props, sorted(props)
    # a capitalised common word is no make
    assert not [n for n in props if "unicorn" in n], sorted(props)
