"""English singulars of nouns: the one singulariser of the built-in extractor's word lists and
of the breakdown's categories (a light module: `review` imports the categories without the
extractor).

    singular(word) -> str     BARRELS -> BARREL, KNIVES -> KNIFE, lens -> lens
"""

from __future__ import annotations

from functools import lru_cache

from stage5cli.extract.names import WORD_CACHE


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# words ending in -s that are singular (or the same in both numbers): never cut the -s
_S_SINGULARS = _words(
    """
    LENS SERIES SPECIES MEANS NEWS THERMOS BUS GAS CHAOS CANVAS ATLAS BIAS IRIS PELVIS
    CACTUS CIRCUS VIRUS BONUS CORPUS OCTOPUS WALRUS CENSUS STATUS APPARATUS GENIUS CHORUS
    CRISIS OASIS BASIS THESIS ANALYSIS AXIS TENNIS TROUSERS PANTS JEANS SHORTS SCISSORS
    GLASSES SUNGLASSES BINOCULARS PLIERS TONGS PAJAMAS PYJAMAS OVERALLS HEADPHONES CLOTHES
    MATHEMATICS PHYSICS POLITICS ELECTRONICS DICE ALIAS COSMOS ETHOS PATHOS KUDOS
    """
)
# irregular plurals
_IRREGULAR = {"TEETH": "TOOTH", "FEET": "FOOT", "GEESE": "GOOSE", "MICE": "MOUSE",
              "CHILDREN": "CHILD", "PEOPLE": "PERSON", "OXEN": "OX", "DICE": "DIE"}
# -ves plurals that are singular + s, and -oes / -ies that keep the e
_VES_S = _words("GLOVES VALVES CURVES NERVES GROOVES SLEEVES STOVES DOVES MOVES OLIVES")
_ES_KEEP = _words("SHOES TOES HOES OBOES CANOES MOVIES COOKIES ZOMBIES HIPPIES")


@lru_cache(maxsize=WORD_CACHE)  # pure; the same words are asked about all through a script
def singular(word: str) -> str:
    """The English singular of an upper- or lower-case noun (BARRELS -> BARREL, KNIVES -> KNIFE);
    the words that end in -s without being plurals stay whole (LENS, SERIES, THERMOS, CACTUS,
    CRISIS, GLASS)."""
    w = word
    up = w.upper()
    lower = w[-1:].islower()

    def cut(n: int, add: str = "") -> str:
        return w[: len(w) - n] + (add.lower() if lower else add)

    if len(w) <= 3 or up in _S_SINGULARS or up.endswith(("SS", "US", "IS", "'S")):
        return w
    if up[-1] != "S" and not up.endswith("MEN") and up not in _IRREGULAR:
        return w  # every rule below wants one of these
    if up in _IRREGULAR and up != "DICE":
        got = _IRREGULAR[up]
        return got.lower() if lower else got
    if up in _ES_KEEP:
        return cut(1)
    if up.endswith("MEN") and len(w) > 4 and up not in {"OMEN", "AMEN", "SEMEN"}:
        return cut(2, "AN")
    if up.endswith("IES") and len(w) > 4:
        return cut(3, "Y")
    if up.endswith(("SHES", "CHES", "XES", "ZZES", "SSES", "OES")):
        return cut(2)
    if up.endswith("VES") and up not in _VES_S:
        return cut(3, "FE" if up.endswith("IVES") else "F")
    if up.endswith("S"):
        return cut(1)
    return w
