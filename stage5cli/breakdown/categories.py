"""Breakdown categories: the one table, the rules that assign them, and a script's own tags.

Every asset has a `type` (character, prop, location: it decides the image size) and a breakdown
`category` (what a line producer tags it as). `CATEGORIES` is the only list of categories and
of their Final Draft tag categories; everything else (the CLI, the CSV, the HTML sheet, the FDX
writer and reader) reads it.

The Final Draft names, numbers and ids are those of Final Draft's default tag categories as
written in FDX files (the same ids appear in Beat's FDX export and in files written by Final
Draft and Fade In). Final Draft has no "Weapons" category: ours is written as a custom category
with its own fixed id. Both `sets` and `locations` are Final Draft's "Location"; on import a
"Location" tag becomes `sets` or `locations` from the INT/EXT of the headings it is tagged in.

`finish_extraction(assets, sp)` is the post-extraction step (both extractors): it turns the
script's own tags (an FDX with TagData) into assets, then gives every asset a category and its
details (`category_info`): speaking and line count for characters, INT/EXT and times for
sets, the wearer for wardrobe when the text says so.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stage5cli.extract.nouns import singular

if TYPE_CHECKING:  # (pydantic models: imported where used, so `review` never loads pydantic)
    from stage5cli.models import ExtractedAsset
    from stage5cli.screenplay.model import Screenplay

__all__ = [
    "CATEGORIES", "CATEGORY_IDS", "Category", "Assignment", "assign_category", "by_id",
    "default_category", "finish_extraction", "from_fd_name", "normalize_category",
    "parse_category", "script_tag_assets", "type_for",
]

_NS = uuid.UUID("6f1c1d2e-5d3b-4c1a-9e1f-2a7b5c0d4e31")  # stage5's namespace for custom ids


@dataclass(frozen=True)
class Category:
    id: str            # ours: lower case, '-' between words
    title: str         # shown on sheets
    fd_name: str       # the Final Draft tag category
    fd_number: int     # its Number attribute in FDX
    fd_id: str         # its Id attribute in FDX (what TagDefinition CatId points to)
    colour: str        # the default colour on the HTML sheet (#rrggbb; configurable)
    types: tuple[str, ...]  # the asset types it can describe

    @property
    def fd_colour(self) -> str:
        """The colour as FDX writes it: 16 bits per channel (#RRRRGGGGBBBB)."""
        return "#" + "".join(self.colour[i:i + 2].upper() * 2 for i in (1, 3, 5))


_ALL = ("character", "prop", "location")
CATEGORIES: tuple[Category, ...] = (
    Category("cast", "Cast", "Cast Members", 2, "01fc9642-84ff-4366-b37c-a3068dee57e8",
             "#e53935", ("character",)),
    Category("background", "Background", "Background Actors", 3,
             "028a4e2b-b507-4d09-88ab-90e3edae9071", "#43a047", ("character",)),
    Category("stunts", "Stunts", "Stunts", 4, "0377dbe6-77a3-41af-bda8-86eb2468fdbf",
             "#fb8c00", ("character", "prop")),
    Category("props", "Props", "Props", 6, "05c556eb-6bc1-4a3a-b09f-f8b5ba1b6afa",
             "#8e24aa", ("prop",)),
    Category("wardrobe", "Wardrobe", "Wardrobe", 9, "0726fa85-1e65-4ab8-87de-bf21d09b01f0",
             "#1e88e5", ("prop",)),
    Category("vehicles", "Vehicles", "Vehicles", 5, "04721a56-f54b-49c8-80ad-d53887d6b851",
             "#f06292", ("prop",)),
    Category("animals", "Animals", "Animals", 11, "09cb0d1c-ce01-4f22-bb64-b5f2e6c491c6",
             "#d81b60", ("prop", "character")),
    Category("weapons", "Weapons", "Weapons", 32, str(uuid.uuid5(_NS, "weapons")),
             "#546e7a", ("prop",)),
    Category("set-dressing", "Set dressing", "Set Dressing", 17,
             "0debb71b-5743-4c53-80cc-e17e841ce645", "#9e9d24", ("prop",)),
    Category("makeup-hair", "Makeup/hair", "Makeup/Hair", 10,
             "08ae1eef-32ce-415f-9a9b-0982d2453ec4", "#f48fb1", ("prop", "character")),
    Category("sfx", "Special effects", "Special Effects", 8,
             "069e18b8-2109-4f3d-94e7-d802027a60a8", "#1565c0", ("prop",)),
    Category("vfx", "Visual effects", "Visual Effects", 23,
             "12ab0932-e3b9-4b4a-bcd0-3da1b4e61d5e", "#00897b", ("prop", "location")),
    Category("sound", "Sound", "Sound", 15, "0ce7d308-096d-4603-8fe8-349f72cd89ff",
             "#795548", ("prop",)),
    Category("music", "Music", "Music", 13, "0b0b44c9-aa4b-4c40-88b1-d94472ad7a26",
             "#a1887f", ("prop",)),
    Category("sets", "Sets", "Location", 30, "c5e89e4d-f83e-4c28-950c-92a63f1b5f26",
             "#fdd835", ("location",)),
    Category("locations", "Locations", "Location", 30, "c5e89e4d-f83e-4c28-950c-92a63f1b5f26",
             "#ffb300", ("location",)),
    Category("misc", "Miscellaneous", "Miscellaneous", 25,
             "ce04f547-f7ee-40c9-ab66-d95a0c98034e", "#9e9e9e", _ALL),
)
CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CATEGORIES)
_BY_ID = {c.id: c for c in CATEGORIES}
_DEFAULT = {"character": "cast", "prop": "props", "location": "sets"}

# other spellings of our ids (LLM answers, user input, other tools' category names)
_SYNONYMS = {
    "cast-members": "cast", "cast-member": "cast", "actor": "cast", "actors": "cast",
    "principal": "cast", "principals": "cast", "character": "cast", "characters": "cast",
    "background-actors": "background", "background-actor": "background", "extras": "background",
    "extra": "background", "atmosphere": "background", "bits": "background",
    "stunt": "stunts", "prop": "props", "hand-props": "props", "costume": "wardrobe",
    "costumes": "wardrobe", "clothing": "wardrobe", "vehicle": "vehicles", "picture-vehicles":
    "vehicles", "animal": "animals", "livestock": "animals", "weapon": "weapons",
    "set-dressings": "set-dressing", "setdressing": "set-dressing", "greenery": "set-dressing",
    "makeup": "makeup-hair", "make-up": "makeup-hair", "hair": "makeup-hair",
    "makeup-and-hair": "makeup-hair", "hair-makeup": "makeup-hair", "make-up-hair": "makeup-hair",
    "special-effects": "sfx", "special-effect": "sfx", "mechanical-effects": "sfx",
    "practical-effects": "sfx", "fx": "sfx", "visual-effects": "vfx", "visual-effect": "vfx",
    "sound-effects": "sound", "set": "sets", "location": "locations", "miscellaneous": "misc",
    "other": "misc", "others": "misc",
}
# Final Draft's tag category names (its defaults and common custom ones) -> ours
_FD_NAMES = {c.fd_name.lower(): c.id for c in CATEGORIES if c.id not in ("sets", "locations")}
_FD_NAMES.update({"cast": "cast", "extras": "background", "costumes": "wardrobe",
                  "costume": "wardrobe", "mechanical effects": "sfx", "greenery": "set-dressing",
                  "livestock": "animals", "makeup": "makeup-hair", "makeup & hair": "makeup-hair",
                  "sets": "sets"})
_FD_LOCATION = ("location", "locations", "set", "scene location")


def by_id(category_id: str) -> Category:
    return _BY_ID[category_id]


def default_category(asset_type: str) -> str:
    """The category an asset of this type has until something assigns one."""
    return _DEFAULT.get(asset_type, "misc")


def type_for(category_id: str) -> str:
    """The asset type an imported tag of this category becomes."""
    if category_id in ("cast", "background", "stunts"):
        return "character"
    if category_id in ("sets", "locations"):
        return "location"
    return "prop"


def normalize_category(value: object) -> str | None:
    """Our id for any spelling ("Cast Members", "set dressing", "SFX"), or None if unknown."""
    if not isinstance(value, str):
        return None
    key = re.sub(r"[\s_/&]+", "-", value.strip().lower()).strip("-")
    key = re.sub(r"-+", "-", key.replace("-and-", "-"))
    if key in _BY_ID:
        return key
    return _SYNONYMS.get(key) or _SYNONYMS.get(key.replace("-", "")) or None


def parse_category(value: str) -> str:
    """A category a person typed; UsageError naming the valid ones if unknown."""
    from stage5cli.errors import UsageError

    found = normalize_category(value)
    if found is None:
        raise UsageError(f"unknown category {value!r}: use one of {', '.join(CATEGORY_IDS)}")
    return found


def from_fd_name(name: str, int_ext: list[str] | None = None) -> str:
    """Our category for a Final Draft tag category name; unknown names are `misc`."""
    low = " ".join((name or "").split()).lower()
    if low in _FD_LOCATION:
        ie = int_ext or []
        return "locations" if ie and all(x in ("EXT", "EST") for x in ie) else "sets"
    return _FD_NAMES.get(low) or normalize_category(low) or "misc"


# ---- word lists (general screenplay vocabulary, not tuned to one script) ---------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


VEHICLES = _words("""
    CAR VAN TRUCK LORRY BUS MINIBUS TAXI CAB LIMO LIMOUSINE SEDAN COUPE CONVERTIBLE JEEP SUV
    PICKUP WAGON STATIONWAGON HATCHBACK MOTORCYCLE MOTORBIKE SCOOTER MOPED BIKE BICYCLE TRICYCLE
    BOAT SHIP FERRY YACHT CANOE KAYAK RAFT DINGHY SKIFF TRAWLER TUGBOAT SUBMARINE SAILBOAT
    STEAMBOAT STEAMER ROWBOAT PLANE AIRPLANE AEROPLANE JET HELICOPTER CHOPPER BLIMP GLIDER
    AMBULANCE FIRETRUCK TRACTOR TRAILER CARAVAN RV CAMPER HEARSE TANK TRAIN TRAM TROLLEY
    STREETCAR CARRIAGE CART STAGECOACH CHARIOT SLED SLEIGH SNOWMOBILE FORKLIFT BULLDOZER
    CRUISER SQUADCAR ROADSTER CADILLAC BUICK CHEVY CHEVROLET FORD MERCEDES BMW PORSCHE FERRARI
    VOLKSWAGEN VW TOYOTA HONDA MUSTANG CORVETTE ROCKET SPACESHIP SPACECRAFT SHUTTLE UFO
""")
ANIMALS = _words("""
    DOG CAT BIRD FISH CATFISH HORSE PONY STALLION MARE FOAL COW BULL OX CALF PIG HOG SHEEP EWE LAMB
    GOAT LION TIGER BEAR WOLF FOX SNAKE SPIDER BEE WASP CROW RAVEN OWL EAGLE HAWK VULTURE BUZZARD
    RAT MOUSE RABBIT BUNNY HARE PUPPY KITTEN ELEPHANT MONKEY APE GORILLA CHIMP PARROT DEER DOE
    DUCK GOOSE CHICKEN HEN ROOSTER SHARK WHALE DOLPHIN FROG TOAD LIZARD TURTLE TORTOISE SQUIRREL
    BAT BUTTERFLY MOTH CRAB LOBSTER OCTOPUS HOUND MUTT MULE DONKEY CAMEL LLAMA GOLDFISH HAMSTER
    GERBIL CANARY PIGEON DOVE SEAGULL GULL PELICAN SWAN FERRET RACCOON SKUNK BEAVER OTTER SEAL
    ALLIGATOR CROCODILE SCORPION COCKROACH BEETLE POODLE TERRIER RETRIEVER SPANIEL BEAGLE
    SHEPHERD DACHSHUND BULLDOG CHIHUAHUA COLLIE HUSKY PUG ROTTWEILER DOBERMAN TABBY STEED
    BRONCO KOI
""")
WEAPONS = _words("""
    GUN HANDGUN PISTOL REVOLVER RIFLE SHOTGUN MUSKET CARBINE UZI AK-47 MACHINEGUN SUBMACHINEGUN
    GLOCK BERETTA COLT MAGNUM DERRINGER LUGER WINCHESTER KNIFE SWITCHBLADE DAGGER SWORD SABER
    SABRE CUTLASS RAPIER MACHETE AXE HATCHET SPEAR LANCE BOW CROSSBOW ARROW GRENADE BOMB
    DYNAMITE MINE BAZOOKA TASER STUNGUN BATON NIGHTSTICK CLUB MACE NUNCHUCKS SHURIKEN TRIDENT
    HALBERD PIKE BLADE KATANA SLINGSHOT HARPOON FLAMETHROWER BLACKJACK BRASSKNUCKLES
""")
WARDROBE = _words("""
    COAT OVERCOAT RAINCOAT TRENCHCOAT JACKET BLAZER CLOAK CAPE PONCHO PARKA ANORAK SHAWL DRESS
    GOWN SKIRT BLOUSE SHIRT T-SHIRT TSHIRT SWEATER JUMPER CARDIGAN HOODIE VEST WAISTCOAT TUXEDO
    TUX SUIT UNIFORM OILSKIN OVERALLS APRON ROBE BATHROBE KIMONO SARI TUNIC TROUSERS PANTS JEANS
    SHORTS LEGGINGS STOCKINGS TIGHTS SOCKS PAJAMAS PYJAMAS NIGHTGOWN LINGERIE BIKINI SWIMSUIT
    SCARF HAT CAP BERET FEDORA BONNET BOWLER STETSON HELMET HOOD VEIL TIARA CROWN MASK GLOVES
    GLOVE MITTENS SHOES SHOE BOOTS BOOT SNEAKERS SANDALS SLIPPERS HEELS LOAFERS TIE BOWTIE
    CRAVAT BELT SUSPENDERS BRACES NECKLACE PENDANT LOCKET BRACELET EARRINGS EARRING RING
    BROOCH CUFFLINKS WATCH WRISTWATCH GLASSES SPECTACLES SUNGLASSES MONOCLE HANDKERCHIEF
    COSTUME OUTFIT GARMENT TOGA CORSET BODICE PETTICOAT FROCK SMOCK OVERALL JERSEY PULLOVER
    TURTLENECK WINDBREAKER BANDANA BANDANNA TURBAN HIJAB SASH BADGE
""")
MAKEUP_HAIR = _words("""
    WIG TOUPEE HAIRPIECE MAKEUP MAKE-UP LIPSTICK MASCARA ROUGE BLUSH EYELINER POWDER TATTOO SCAR
    SCARS BRUISE BRUISES WOUND PROSTHETIC PROSTHETICS BEARD MOUSTACHE MUSTACHE SIDEBURNS BRAID
    PONYTAIL HAIRDO HAIRCUT DREADLOCKS
""")
SFX = _words("""
    EXPLOSION FIRE FLAMES BLAZE SMOKE RAIN SNOW SNOWFALL FOG MIST STORM LIGHTNING THUNDERSTORM
    SPARKS FIREWORKS BLOOD SQUIB SQUIBS WIND HAIL BLIZZARD TORNADO HURRICANE FLOOD EARTHQUAKE
    BLAST FIREBALL STEAM
""")
SET_DRESSING = _words("""
    SOFA COUCH ARMCHAIR BED BUNK CRIB DESK BOOKSHELF BOOKCASE SHELF SHELVES CABINET CUPBOARD
    DRESSER WARDROBE CLOSET CHEST TABLE COUNTER BAR STOOL BENCH PEW RUG CARPET CURTAINS CURTAIN
    DRAPES BLINDS PAINTING PORTRAIT POSTER MURAL TAPESTRY CHANDELIER FIREPLACE MANTEL
    MANTELPIECE PIANO ORGAN JUKEBOX FRIDGE REFRIGERATOR STOVE OVEN SINK BATHTUB TUB TOILET
    FOUNTAIN STATUE SCULPTURE PLANT PLANTS FERN FERNS VASE FLOWERS WALLPAPER LAMPPOST
    BILLBOARD SIGN NEON ALTAR THRONE PODIUM LECTERN BOOTH
""")
GROUP_WORDS = _words("""
    MEN WOMEN PEOPLE CHILDREN KIDS FOLKS FOLK TOWNSFOLK TOWNSPEOPLE CROWD MOB GROUP BAND CHORUS
    CONGREGATION AUDIENCE FAMILY TEAM GANG CREW STAFF TROUPE ARMY POLICE OTHERS EVERYONE
    EVERYBODY ALL BOTH VARIOUS PASSERSBY PATRONS GUESTS COUPLE PAIR TRIO CLASS JURY COUNCIL
    COMMITTEE SQUAD PLATOON SOLDIERS GUARDS COPS WORKERS STUDENTS DANCERS ONLOOKERS EXTRAS
    SPECTATORS VILLAGERS TOURISTS PASSENGERS CUSTOMERS DINERS WAITERS NURSES DOCTORS KNIGHTS
    PIRATES ZOMBIES REPORTERS PHOTOGRAPHERS FANS
""")
GROUP_PREFIXES = _words(
    "VARIOUS SEVERAL MANY SOME ALL BOTH TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN DOZEN "
    "HUNDREDS THOUSANDS DOZENS OTHER")
# words that mark a character as an unnamed bit part ("A WAITER", "OLD MAN", "GUARD #2")
ROLE_NOUNS = _words("""
    MAN WOMAN BOY GIRL KID CHILD BABY TEEN TEENAGER GUY LADY GENTLEMAN PERSON STRANGER YOUTH
    WAITER WAITRESS BARTENDER BUTLER MAID CLERK CASHIER TELLER DRIVER CHAUFFEUR PILOT NURSE
    DOCTOR SURGEON PARAMEDIC COP POLICEMAN POLICEWOMAN OFFICER DETECTIVE GUARD SOLDIER SERGEANT
    PRIEST NUN JUDGE LAWYER REPORTER PHOTOGRAPHER ANNOUNCER FARMER WORKER EMPLOYEE MANAGER
    OWNER CUSTOMER CLIENT VISITOR GUEST TOURIST PASSENGER PASSERBY PEDESTRIAN BYSTANDER
    SPECTATOR WITNESS VICTIM SUSPECT THIEF ROBBER THUG HENCHMAN JANITOR MAILMAN POSTMAN
    SALESMAN VENDOR LIBRARIAN BEGGAR DRUNK PATRON MOURNER STUDENT TEACHER ATTENDANT RECEPTIONIST
    SECRETARY ASSISTANT TECHNICIAN MECHANIC BOUNCER DOORMAN VALET PORTER USHER MESSENGER
    COURIER VOICE VOICES NARRATOR ANNOUNCER DJ
""")
HANDLING = re.compile(
    r"\b(?:picks?|picked|holds?|holding|held|grabs?|grabbed|takes?|took|carr(?:y|ies|ied)|lifts?|"
    r"lifted|pushes|pushed|pulls?|pulled|drags?|dragged|opens?|opened|hands?|handed|throws?|"
    r"threw|uses?|used|moves?|moved|wheels?|wheeled|sits? on|lies on)\b", re.I)
WEAR = re.compile(
    r"^\s*['’]s\b|\b(?:wears?|wearing|wore|worn|dons?|donning|donned|puts? on|pulls? on|"
    r"slips? on|takes? off|buttons?|zips?|adjusts?|tugs? at|in (?:a|an|the|her|his|their)|"
    r"her|his|their)\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_POSSESSOR = re.compile(r"^(.*?)['’]S\s+(.+)$", re.I)
_NUMBERED = re.compile(r"(?:#\s*\d+|\b\d+)$")


def _name_words(name: str) -> list[str]:
    """Upper-case words of a name without extensions and punctuation; after a possessive only."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name or "")
    m = _POSSESSOR.match(text.strip())
    if m:  # MARA'S RED COAT -> RED COAT
        text = m.group(2)
    return [w for w in re.split(r"[^\w'’&-]+", text.upper()) if w and not w.isdigit()]


def _in(words: list[str], lexicon: frozenset[str]) -> bool:
    """The head noun (last word) is in the lexicon, or a two-word compound's first word is."""
    if not words:
        return False
    head = words[-1]
    return head in lexicon or singular(head) in lexicon or "".join(words[-2:]) in lexicon


# ---- the screenplay side ---------------------------------------------------------------------


_NORMED: dict[str, str] | None = None  # a names.Memo of norm_name while finish_extraction runs


def _norm(name: str) -> str:
    """norm_name, memoised while a finish_extraction runs: the headings' locations and the
    locations' names are mostly the same strings, and norm_name's own bounded cache misses on
    a script of 240,000 distinct headings. (A pure function's memo: threads sharing it only
    ever recompute.)"""
    from stage5cli.extract.merge import norm_name

    memo = _NORMED
    return norm_name(name) if memo is None else memo[name]


def _keys(asset: ExtractedAsset) -> set[str]:
    return {k for k in (_norm(x) for x in [asset.name, *asset.aliases]) if k}


_JOINT_CUE = re.compile(r"\s+(?:AND|&)\s+|\s*/\s*", re.I)


def cue_counts(sp: Screenplay) -> Counter:
    """Speeches per normalised speaker (joint cues "EDWARD AND WILL" count for both)."""
    from stage5cli.screenplay.summary import character_name

    cues = Counter(el.name if el.name is not None else el.text
                   for el in sp.elements if el.type == "character")
    out: Counter = Counter()
    for cue, n in cues.items():  # each spelling read once, however often it speaks
        name = character_name(cue)
        for part in {name, *_JOINT_CUE.split(name)}:
            key = _norm(part)
            if key:
                out[key] += n
    return out


def _paragraphs(asset: ExtractedAsset, sp: Screenplay) -> list[list[str]]:
    """The sentences of every action paragraph of the asset's scenes, then its quotes."""
    out: list[list[str]] = []
    for n in sorted({m.scene_number for m in asset.mentions}):
        scene = sp.scene(n)
        if scene is None:
            continue
        for e in sp.scene_elements(scene):
            if e.type in ("action", "centered"):
                out.append([s for s in _SENTENCE.split(e.text) if s.strip()])
    out.extend([m.context] for m in asset.mentions if m.context)
    return out


def _sentences(asset: ExtractedAsset, sp: Screenplay) -> list[str]:
    return [s for para in _paragraphs(asset, sp) for s in para]


def _spelling_re(spellings: list[str]) -> re.Pattern | None:
    spellings = sorted({s for s in spellings if len(s.strip()) > 1}, key=len, reverse=True)
    if not spellings:
        return None
    alt = "|".join(re.escape(s).replace(r"\ ", r"\s+") for s in spellings)
    return re.compile(rf"(?<![\w'’])(?:{alt})(?![\w])", re.I)


_PRONOUN = re.compile(r"\b(?:she|he|they)\b", re.I)


def find_wearer(asset: ExtractedAsset, sp: Screenplay, people: list[ExtractedAsset]) -> str | None:
    """The character who wears this item when the text says so, else None.

    "MARA'S RED COAT", "MARA wears a RED COAT", "MARA adjusts her RED SCARF", "Mara, in her
    blue coat": the nearest character named before the item in the same sentence, when the
    words between them are a possessive or a wearing phrase ("She adjusts her RED SCARF" after
    a sentence naming MARA counts for MARA). The most frequent reading wins.
    """
    if not people:
        return None
    m = _POSSESSOR.match(asset.name.strip())
    if m:
        owner = _norm(m.group(1))
        for p in people:
            if owner in _keys(p):
                return p.name
    item_re = _spelling_re([asset.name, *asset.aliases])
    if item_re is None:
        return None
    person_res = [(p, rx) for p in people if (rx := _spelling_re([p.name, *p.aliases]))]

    def last_person(text: str) -> tuple[int, ExtractedAsset] | None:
        best: tuple[int, ExtractedAsset] | None = None
        for p, rx in person_res:
            for pm in rx.finditer(text):
                if best is None or pm.end() > best[0]:
                    best = (pm.end(), p)
        return best

    votes: Counter = Counter()
    for para in _paragraphs(asset, sp):
        named: ExtractedAsset | None = None  # the last character named in earlier sentences
        for sentence in para:
            for hit in item_re.finditer(sentence):
                before = sentence[:hit.start()]
                best = last_person(before)
                if best is not None:
                    between = before[best[0]:]
                    if len(between) <= 60 and WEAR.search(between):
                        votes[best[1].name] += 1
                elif named is not None and _PRONOUN.search(before) and WEAR.search(before):
                    votes[named.name] += 1
            found = last_person(sentence)
            if found is not None:
                named = found[1]
    if not votes:
        return None
    return max(votes, key=lambda n: (votes[n], n))


# ---- assignment ------------------------------------------------------------------------------


@dataclass
class Assignment:
    category: str
    info: dict
    source: str  # "rule", "llm" or "script-tags"


def _character_category(asset: ExtractedAsset, speaking: bool) -> str:
    if speaking:
        return "cast"
    words = _name_words(asset.name)
    if _in(words, ANIMALS):
        return "animals"
    if not words:
        return "background"
    if any(w in GROUP_WORDS for w in words) or words[0] in GROUP_PREFIXES \
            or _NUMBERED.search(asset.name.strip()):
        return "background"
    raw = asset.name.strip().upper()
    if raw.startswith(("A ", "AN ", "THE ", "SOME ")) or _in(words, ROLE_NOUNS):
        return "background"
    return "cast"  # named, even if silent


def _handled(asset: ExtractedAsset, sp: Screenplay) -> bool:
    item_re = _spelling_re([asset.name, *asset.aliases])
    if item_re is None:
        return False
    for sentence in _sentences(asset, sp):
        hit = item_re.search(sentence)
        if hit and HANDLING.search(sentence[max(0, hit.start() - 50):hit.start()]):
            return True
    return False


def _prop_category(asset: ExtractedAsset, sp: Screenplay) -> str:
    words = _name_words(asset.name)
    for lexicon, cat in ((ANIMALS, "animals"), (VEHICLES, "vehicles"), (WEAPONS, "weapons"),
                         (WARDROBE, "wardrobe"), (MAKEUP_HAIR, "makeup-hair"), (SFX, "sfx")):
        if _in(words, lexicon):
            return cat
    if _in(words, SET_DRESSING):
        return "props" if _handled(asset, sp) else "set-dressing"
    return "props"


def scenes_by_place(sp: Screenplay) -> dict[str, list]:
    """Numbered scenes by the normalised form of their location, in script order (built once
    per extraction: asking every location about every scene is quadratic)."""
    out: dict[str, list] = {}
    for s in sp.scenes:
        if s.number > 0 and s.location:
            out.setdefault(_norm(s.location), []).append(s)
    return out


def _location_info(asset: ExtractedAsset, sp: Screenplay,
                   by_place: dict[str, list] | None = None) -> dict:
    by_place = scenes_by_place(sp) if by_place is None else by_place
    keys = _keys(asset)
    scenes = [s for k in keys for s in by_place.get(k, ())]
    if not scenes:
        mentioned = {m.scene_number for m in asset.mentions}
        scenes = [s for s in sp.scenes if s.number in mentioned and s.number > 0]
    int_ext = sorted({s.int_ext for s in scenes if s.int_ext})
    times = sorted({s.time_of_day for s in scenes if s.time_of_day})
    return {"int_ext": int_ext, "times": times}


def _location_category(info: dict) -> str:
    ie = info["int_ext"]
    if ie and all(x in ("EXT", "EST") for x in ie):
        return "locations"
    return "sets"


def assign_category(asset: ExtractedAsset, sp: Screenplay, *, cues: Counter | None = None,
                    people: list[ExtractedAsset] | None = None,
                    by_place: dict[str, list] | None = None) -> Assignment:
    """The category of one extracted asset and its details.

    A category the asset already carries in `extra["category"]` (an LLM's pass-1 answer, or
    the script's own tags) is used when it is valid for the asset's type; otherwise the rules:
    characters are `cast` when they speak (a cue) or are named, `background` when they are
    silent bits or groups, `animals` when a silent creature; props by their head noun
    (vehicles, animals, weapons, wardrobe, makeup-hair, sfx, set-dressing unless handled, else
    props); locations `sets` unless every heading they appear in is EXT (`locations`).
    """
    cues = cue_counts(sp) if cues is None else cues
    info: dict = {}
    if asset.type == "character":
        lines = sum(cues.get(k, 0) for k in _keys(asset))
        info = {"speaking": lines > 0, "lines": lines}
        rule = _character_category(asset, lines > 0)
    elif asset.type == "location":
        info = _location_info(asset, sp, by_place)
        rule = _location_category(info)
    else:
        rule = _prop_category(asset, sp)
    given = asset.extra.get("category")
    source = "rule"
    chosen = rule
    if asset.extra.get("origin") == "script-tags" and given in _BY_ID:
        chosen, source = given, "script-tags"
    else:
        valid = normalize_category(given)
        if valid is not None and asset.type in _BY_ID[valid].types:
            chosen, source = valid, "llm"
    if chosen == "wardrobe":
        wearer = find_wearer(asset, sp, people or [])
        if wearer:
            info["wearer"] = wearer
    return Assignment(chosen, info, source)


# ---- a script's own tags (FDX TagData) -------------------------------------------------------


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def script_tag_assets(sp: Screenplay) -> list[ExtractedAsset]:
    """The assets the script's own tags make: category, aliases and mentions from the tags."""
    from stage5cli.models import ExtractedAsset, Mention

    out: list[ExtractedAsset] = []
    for tag in sp.tags or []:
        if not tag.spans:
            continue
        scenes = {s.scene for s in tag.spans}
        int_ext = [s.int_ext for s in sp.scenes if s.number in scenes and s.int_ext]
        cat = from_fd_name(tag.category, int_ext)
        name = " ".join(tag.label.split()) or " ".join(tag.spans[0].text.split())
        if not name:
            continue
        aliases: list[str] = []
        for span in tag.spans:
            t = " ".join(span.text.split())
            if t and t.lower() != name.lower() and t.lower() not in (a.lower() for a in aliases):
                aliases.append(t)
        mentions: list[Mention] = []
        seen: set[tuple[int, str]] = set()
        for span in tag.spans:
            key = (span.scene, span.text.lower())
            if key in seen:
                continue
            seen.add(key)
            el = sp.elements[span.element]
            mentions.append(Mention(scene_number=span.scene, text=span.text, context=_clip(el.text)))
        out.append(ExtractedAsset(
            name=name, type=type_for(cat), aliases=aliases, mentions=mentions,
            confidence_score=1.0,
            extra={"origin": "script-tags", "category": cat, "fd_category": tag.category,
                   "extractor": "script-tags"}))
    from stage5cli.extract.merge import merge_assets

    return merge_assets(out) if out else []


def finish_extraction(assets: list[ExtractedAsset], sp: Screenplay) -> list[ExtractedAsset]:
    """The post-extraction step of both extractors: script tags first, then categories.

    Assets the script's own tags make replace extracted assets that share a name or alias
    with them (their description and priority are kept when the tag has none); every asset
    then gets `extra["category"]`, `extra["category_info"]` and `extra["category_source"]`
    (set in place: the assets handed in are the result's).
    """
    global _NORMED
    from stage5cli.extract.names import Memo, norm_name

    _NORMED = Memo(norm_name)
    try:
        return _finish(assets, sp)
    finally:
        _NORMED = None


def _finish(assets: list[ExtractedAsset], sp: Screenplay) -> list[ExtractedAsset]:
    tagged = script_tag_assets(sp)
    if tagged:
        owner: dict[str, ExtractedAsset] = {}
        for t in tagged:
            for k in _keys(t):
                owner.setdefault(k, t)
        rest: list[ExtractedAsset] = []
        for a in assets:
            hit = next((owner[k] for k in _keys(a) if k in owner), None)
            if hit is None:
                rest.append(a)
                continue
            if not hit.description and a.description:
                hit.description = a.description
            hit.is_priority = hit.is_priority or a.is_priority
        assets = [*tagged, *rest]
    cues = cue_counts(sp)
    people = [a for a in assets if a.type == "character"]
    by_place = scenes_by_place(sp)
    for a in assets:  # in place: the caller hands over the extraction and keeps the result
        got = assign_category(a, sp, cues=cues, people=people, by_place=by_place)
        a.extra = {**a.extra, "category": got.category, "category_info": got.info,
                   "category_source": got.source}
    return assets
