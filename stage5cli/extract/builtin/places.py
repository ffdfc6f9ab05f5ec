"""Pass 1 for locations: one place per distinct scene-heading location, variants merged.

Policy (documented in tests/data/expectations/README.md as well):
- INT/EXT, time of day, dates and tags are removed (the parser already separates most of them);
  status parts such as DRIVING, FLYING, VARIOUS SHOTS and compass directions are removed too.
- A leading article or position phrase (THE, AT THE, BY THE, OUTSIDE, BEHIND, ON) does not make
  a new place: "BY THE RIVER" is the river. It stays in the displayed name of its own variant.
- "X - Y" / "X / Y" where both parts are places is a sub-location: a location of its own.
  "MOUNT GURU FOREST" and "MOUNT GURU MEADOW" are two places.
- Variants merge: same words ignoring punctuation/hyphens ("BIG-TOP" = "BIG TOP"), same letters
  ignoring spaces ("BACK YARD" = "BACKYARD"), "TOWN OF X" = "X", a parenthesised name
  ("RESTAURANT (LA RUE 14°)" = "LA RUE 14°"), and a shorter name whose words all appear, in order,
  in a longer one with the same first and last word ("BAXTER'S APARTMENT" = "BAXTER'S SAN
  FRANCISCO APARTMENT"), unless an extra word tells them apart ("SCOTT'S NEW APARTMENT").
- Story-time tags ("BACK TO PRESENT", "(IN HER MEMORY)", "DREAM SEQUENCE", "TWO YEARS LATER")
  are removed by their vocabulary (screenplay/scenes.py STORY_TIME_WORDS), not by instance.
- Forced "." headings are places only when they read as one (forced_place); shots, inserts,
  POVs and title cards are none; "VARIOUS LOCATIONS" is none.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from stage5cli.extract.builtin.text import Index
from stage5cli.extract.names import WORD_CACHE, UnionFind
from stage5cli.screenplay.scenes import (
    CONTINUITY_TAGS,
    STORY_TIME_WORDS,
    TIME_FILLER_WORDS,
    TIME_WORDS,
)

_SEPARATORS = re.compile(r"\s+[-–—]+\s+|\s*--+\s*|\s*/\s*|\s*,\s*|\s+[-–—]+$")
_PARENS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
_PUNCT = re.compile(r"[^\w\s&°]")
_POSSESSIVE_S = re.compile(r"'S\b")
_ARTICLES = ("THE", "A", "AN")
# words a heading part is made of when it says how or when, not where: movement and shots,
# and the parser's times of day and continuity tags (screenplay/scenes.py)
_STATUS_WORDS = (
    frozenset(
        """
        DRIVING MOVING FLYING RIDING WALKING RUNNING TRAVELING TRAVELLING SAILING DRIFTING PARKED
        VARIOUS SHOTS SHOT SERIES OF MONTAGE INTERCUT INTERCUTTING UNDERWATER POV ESTABLISHING
        TIME MOMENTS MOMENT MAGIC
        """.split()
    )
    | TIME_WORDS
    | {tag for tag in CONTINUITY_TAGS if " " not in tag}
)
# a tag part ("BACK TO PRESENT", "IN HER MEMORY", "TWO YEARS LATER") is made of these words only,
# with at least one status, time or story-time word among them
_TAG_FILLERS = TIME_FILLER_WORDS | frozenset(
    "IN HER HIS THEIR MY OUR YOUR TO OF AT THE A AN AND".split()
)
_TAG_CORE = _STATUS_WORDS | STORY_TIME_WORDS
# trailing words that only say how long after ("LIBRARY MOMENTS [LATER]", "ROAD TWO YEARS")
_DURATIONS = frozenset(
    "MOMENT MOMENTS SECOND SECONDS MINUTE MINUTES HOURS WEEKS MONTHS YEARS".split()
)
_COUNTS = frozenset("A FEW SEVERAL SOME MANY ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN".split())
# words that make a forced heading a shot, an insert or a title card, not a place
SHOT_WORDS = frozenset(
    """POV INSERT INSERTS CLOSE CLOSEUP CLOSE-UP CLOSEUPS ECU ANGLE ANGLES TITLE TITLES CARD CARDS
    SUPER SUPERS SUBTITLE SUBTITLES CHYRON CAPTION MONTAGE SERIES SHOT SHOTS INTERCUT INTERCUTTING
    WIDE REVERSE PAN TRACKING ESTABLISHING AERIAL OVERHEAD SCENE CREDITS FADE CUT DISSOLVE FREEZE
    SPLIT SCREEN BLACK WHITE END OMITTED FLASHCUT FLASHBACK FLASH TWO-SHOT OTS VIEW LATER
    CONTINUOUS PRELAP MORE""".split()
)
# a forced heading that opens with one of these names where the scene is ("BEHIND THE BARN")
_PLACE_PREPOSITIONS = frozenset(
    """BEHIND INSIDE UNDER UNDERNEATH BENEATH BELOW ABOVE ATOP OUTSIDE NEAR BESIDE BY ACROSS ALONG
    IN AT INTO THROUGH AROUND AMONG BETWEEN UPON WITHIN ALONGSIDE OPPOSITE""".split()
)
# nouns that name a place one can stand in: rooms, buildings, grounds, terrain
SETTING_NOUNS = frozenset(
    """ROOM BEDROOM KITCHEN BATHROOM LAVATORY TOILET HALLWAY HALL CORRIDOR LOBBY OFFICE STUDY
    LIBRARY ATTIC BASEMENT CELLAR CLOSET PANTRY PARLOR PARLOUR LOUNGE DEN NURSERY STAIRWELL
    STAIRCASE LANDING PORCH BALCONY TERRACE PATIO DECK ROOF ROOFTOP GARAGE SHED BARN STABLE
    SHACK HUT CABIN COTTAGE HOUSE HOME MANSION PALACE CASTLE FORT FORTRESS TOWER LIGHTHOUSE
    APARTMENT FLAT LOFT STUDIO BUILDING SKYSCRAPER HOTEL MOTEL INN TAVERN PUB BAR SALOON CAFE
    DINER RESTAURANT STORE SHOP MARKET MALL SUPERMARKET BANK SCHOOL CLASSROOM GYM GYMNASIUM
    HOSPITAL CLINIC WARD CHURCH CHAPEL CATHEDRAL TEMPLE MOSQUE SYNAGOGUE CEMETERY GRAVEYARD
    PRISON JAIL CELL STATION PLATFORM DEPOT AIRPORT HANGAR HARBOR HARBOUR PORT DOCK DOCKS PIER
    WHARF MARINA FACTORY MILL WAREHOUSE PLANT LAB LABORATORY THEATER THEATRE CINEMA ARENA
    STADIUM FIELD COURT COURTYARD COURTROOM YARD BACKYARD GARDEN LAWN PARK PLAYGROUND SQUARE
    PLAZA STREET ROAD AVENUE LANE ALLEY ALLEYWAY HIGHWAY FREEWAY BRIDGE TUNNEL SIDEWALK PARKING
    LOT FARM RANCH ORCHARD VINEYARD FOREST WOODS WOOD JUNGLE MEADOW PRAIRIE DESERT BEACH SHORE
    COAST CLIFF CAVE CANYON VALLEY HILL HILLTOP MOUNTAIN PEAK SUMMIT RIDGE RIVER RIVERBANK LAKE
    POND SEA OCEAN ISLAND SWAMP MARSH CAMP CAMPSITE CAMPGROUND TENT VILLAGE TOWN CITY
    NEIGHBORHOOD NEIGHBOURHOOD SUBURB DISTRICT ESTATE GROUNDS CLEARING TRAIL PATH CROSSROADS
    INTERSECTION CORNER BOOTH CUBICLE CHAMBER VAULT CRYPT TOMB BUNKER SEWER MINE QUARRY DUNGEON
    GALLERY MUSEUM STAGE BACKSTAGE DRESSING WING ENTRANCE EXIT DRIVEWAY GATE GATES FOYER
    VESTIBULE ATRIUM CONSERVATORY GREENHOUSE WORKSHOP SHOWROOM BOARDROOM CAFETERIA CANTEEN MESS
    DORM DORMITORY BARRACKS HQ HEADQUARTERS BASE OUTPOST OVERLOOK LOOKOUT VIEWPOINT""".split()
)
# features of a place, not places of their own: "CREEPY OLD HOUSE - GATE" is the house,
# "AT THE GATE" is wherever we are ("LIGHTHOUSE - LAMP ROOM", a room, stays its own place)
PART_NOUNS = frozenset(
    """GATE GATES DOOR DOORS DOORWAY DOORSTEP THRESHOLD PORCH STOOP STAIRS STAIRWAY STEPS WINDOW
    WINDOWS DRIVEWAY ENTRANCE ENTRYWAY FENCE GRAVESIDE GRAVE CORNER COUNTER DESK BOOTH TABLE
    BAR-STOOL""".split()
)
_STATUS_LEADS = ("NORTHBOUND", "SOUTHBOUND", "EASTBOUND", "WESTBOUND", "HEADING", "EN ROUTE")
_POSITION_LEADS = (
    "HIGH ABOVE",
    "IN FRONT OF",
    "OUTSIDE OF",
    "NEXT TO",
    "BACK AT",
    "BACK IN",
    "BACK TO",
    "FURTHER ALONG",
    "AT",
    "BY",
    "NEAR",
    "OUTSIDE",
    "INSIDE",
    "BEHIND",
    "ON",
    "ABOVE",
    "BELOW",
    "UNDER",
    "UNDERNEATH",
    "APPROACHING",
    "ACROSS",
    "ALONG",
    "BESIDE",
    "OFF",
)
_OF_PLACES = ("TOWN OF", "CITY OF", "VILLAGE OF")
_LEADS = tuple(lead + " " for lead in _POSITION_LEADS + _OF_PLACES)
# words that tell two otherwise equal places apart ("SCOTT'S NEW APARTMENT")
_DISTINGUISHING = frozenset(
    """
    NEW OLD OTHER FIRST SECOND THIRD FOURTH UPPER LOWER BACK FRONT MAIN SIDE NORTH SOUTH EAST
    WEST NORTHERN SOUTHERN EASTERN WESTERN INNER OUTER SMALL BIG LITTLE LARGE MASTER GUEST SPARE
    PRIVATE PUBLIC EMPTY ABANDONED BURNED RUINED DESTROYED FORMER FUTURE UPSTAIRS DOWNSTAIRS
    """.split()
)
_NO_PLACE = frozenset({"VARIOUS LOCATIONS", "VARIOUS", "LOCATIONS", "VARIOUS PLACES", "MONTAGE"})


@dataclass(slots=True)
class Place:
    display: str
    names: Counter = field(default_factory=Counter)
    aliases: set[str] = field(default_factory=set)
    scenes: dict[int, str] = field(default_factory=dict)  # scene -> heading as written
    key: str = ""  # place_key(display), kept from when the variant was made


def _strip_articles(text: str) -> str:
    words = text.split()
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def _is_status(part: str) -> bool:
    words = part.replace(".", " ").split()
    if not words:
        return True
    if part.startswith(_STATUS_LEADS):
        return True
    if all(w in _STATUS_WORDS or w.isdigit() for w in words):
        return True
    # a story-time tag: "BACK TO PRESENT", "IN HER MEMORY", "DREAM SEQUENCE", "TWO YEARS LATER"
    return all(w in _TAG_CORE or w in _TAG_FILLERS or w.isdigit() for w in words) and any(
        w in _TAG_CORE for w in words
    )


def _is_part(text: str) -> bool:
    words = place_key(text).split()
    return bool(words) and words[-1] in PART_NOUNS and len(words) <= 3


def _strip_durations(part: str) -> str:
    """ "LIBRARY MOMENTS" (the parser took LATER as the time) -> "LIBRARY"."""
    words = part.split()
    cut = len(words)
    while cut > 1 and words[cut - 1] in _DURATIONS:
        cut -= 1
    if cut == len(words):
        return part
    while cut > 1 and (words[cut - 1] in _COUNTS or words[cut - 1].isdigit()):
        cut -= 1
    return " ".join(words[:cut])


@lru_cache(maxsize=WORD_CACHE)
def place_key(name: str) -> str:
    """Merge key of a place name: no position lead, article, possessive or punctuation."""
    text = name.upper()
    if "'" in text or "’" in text:
        text = _POSSESSIVE_S.sub("", text.replace("’", "'"))
    text = " ".join(_PUNCT.sub(" ", text.replace("-", " ").replace("/", " ")).split())
    while True:
        text = _strip_articles(text)
        if not text.startswith(_LEADS):
            return text  # no lead (left) to take off: what most names are
        changed = False
        for lead in _POSITION_LEADS + _OF_PLACES:
            if text.startswith(lead + " ") and len(text) > len(lead) + 1:
                text = text[len(lead) + 1 :]
                changed = True
        if not changed:
            return text


def split_location(location: str) -> tuple[str, list[str]] | None:
    """(display name, extra aliases) of a parsed heading location, or None for no place."""
    got = _split_location(location)
    return None if got is None else (got[0], list(got[1]))


@lru_cache(maxsize=WORD_CACHE)  # find_places asks about every heading twice
def _split_location(location: str) -> tuple[str, tuple[str, ...]] | None:
    text = " ".join(location.upper().replace("’", "'").split())
    aliases: list[str] = []

    def _paren(m: re.Match) -> str:
        inner = (m.group(1) or m.group(2) or "").strip()
        if inner and (len(inner.split()) >= 2 or any(ch.isdigit() for ch in inner)):
            if not _is_status(inner):
                aliases.append(inner)
        return " "

    if "(" in text or "[" in text:
        text = _PARENS.sub(_paren, text)
    parts = [_strip_durations(p.strip(" .-:")) for p in _SEPARATORS.split(text)]
    parts = [_strip_articles(p) for p in parts if p and not _is_status(p)]
    # a position-only part ("FURTHER ALONG - ROUGH PATH")
    parts = [p for p in parts if p not in _POSITION_LEADS]
    # a feature of the place before it ("WITCH'S HOUSE - GATE", "BLOOM HOUSE - STAIRS")
    parts = parts[:1] + [p for p in parts[1:] if not _is_part(p)]
    if not parts:
        return None
    display = " - ".join(parts)
    if display in _NO_PLACE or place_key(display) in _NO_PLACE:
        return None
    return display, tuple(aliases)


def _forced_words(location: str) -> list[str]:
    # the first comma part: ".THE PAIR, DRINKING BEER IN THE LIVING ROOM" is about the pair
    text = " ".join(location.upper().replace("’", "'").split()).strip(" .:-")
    text = text.split(",")[0]
    words = [w.strip(":;.()[]\"") for w in re.split(r"[\s/]+|\s+[-–—]+\s+", text)]
    words = [w for w in words if w]
    while len(words) > 1 and words[0] in ("BACK", "FROM", "AND", "THEN", "NOW"):
        words = words[1:]  # BACK IN THE APARTMENT, FROM OUTSIDE THE HOUSE
    return words


def forced_place(location: str, known_keys: set[str] = frozenset()) -> bool:
    """Does a forced "." heading name a place? A shot, insert, POV or title card (".SNIPER SCOPE
    POV", ".INSERT - HER HAND", ".TITLE CARD:", ".ANGLE ON") does not, nor does a subject or an
    action (".SCOTT", ".THE FINGER", ".SCOTT REENTERING HIS APARTMENT"); the inside of anything
    (".INSIDE THE WARDROBE"), a preposition of place before a setting (".BEHIND THE BARN"), a noun
    phrase whose head is a setting (".THE BELL TOWER", ".NAK'S BEDROOM") or the name of a place
    a regular heading names does."""
    words = _forced_words(location)
    if not words or any(w in SHOT_WORDS for w in words):
        return False
    if place_key(" ".join(words)) in known_keys:
        return True
    core = words
    while len(core) > 1 and core[0] in _ARTICLES:
        core = core[1:]

    def setting(word: str) -> bool:
        word = re.sub(r"'S$", "", word)
        return word in SETTING_NOUNS or (word.endswith("S") and word[:-1] in SETTING_NOUNS)

    if any(w.endswith("ING") and len(w) > 4 and not setting(w) for w in core):
        return False  # an action: SCOTT REENTERING HIS APARTMENT
    lead = core[0]
    if lead in ("INSIDE", "IN", "INTO", "WITHIN") and len(core) >= 2:
        return True  # the inside of anything is a place one can be in
    # the noun the phrase is about: before "OF" ("UNDER THE CHASSIS OF THE MAZDA" -> CHASSIS)
    head = core[core.index("OF") - 1] if "OF" in core[1:] else core[-1]
    if lead == "ON":
        return setting(head)  # ON THE ROOF is a place; ON THE TV, ON SANDRA are shots
    return setting(head)


def _forced_key(location: str) -> str:
    words = _forced_words(location)
    while len(words) > 1 and (words[0] in _PLACE_PREPOSITIONS or words[0] in _ARTICLES):
        words = words[1:]
    return place_key(" ".join(words))


def find_places(index: Index) -> list[Place]:
    variants: dict[str, Place] = {}  # display -> its own Place before merging
    known: set[str] = set()
    order: list[str] = []  # place keys in order of first heading (for forced headings)
    order_display: dict[str, str] = {}
    headed = [s for s in index.sp.scenes if s.number and s.location]
    if any(s.forced for s in headed):  # what a forced heading may name
        for scene in headed:
            if not scene.forced:
                got = _split_location(scene.location)
                if got is not None:
                    known.add(place_key(got[0]))
    for scene in headed:
        if scene.forced:
            if not forced_place(scene.location, known):
                continue
            # a forced heading naming a place by its common noun ("BACK IN THE APARTMENT") is
            # the latest place before it whose name ends so; else a place of its own
            key = _forced_key(scene.location)
            earlier = next((v for v in reversed(order) if v.endswith(" " + key) or v == key), None)
            if earlier is not None:
                variants[order_display[earlier]].scenes.setdefault(
                    scene.number, " ".join(scene.heading.split()))
                continue
            got = _split_location(" ".join(_forced_words(scene.location)))
        else:
            got = _split_location(scene.location)
        if got is None:
            continue
        display, extra = got
        k = place_key(display)
        if order and display != k and _is_part(display):
            # "AT THE GATE", "AT THE OLD WOMAN'S DOOR": a feature of the place we are at
            variants[order_display[order[-1]]].scenes.setdefault(
                scene.number, " ".join(scene.heading.split()))
            continue
        if k not in order_display:
            order.append(k)
        order_display[k] = display
        p = variants.get(display)
        if p is None:
            p = variants[display] = Place(display, key=k)
        p.names[display] += 1
        if extra:
            p.aliases.update(extra)
        p.scenes.setdefault(scene.number, " ".join(scene.heading.split()))
    return _merge(list(variants.values()))


def _merge(places: list[Place]) -> list[Place]:
    same = UnionFind(range(len(places)))
    find, union = same.find, same.union
    owner: dict[str, int] = {}
    for i, p in enumerate(places):
        own = p.key or place_key(p.display)
        keys = {own} | {place_key(a) for a in p.aliases} if p.aliases else {own}
        for k in keys:
            for kk in (k, k.replace(" ", "")):
                j = owner.setdefault(kk, i)
                if j != i:
                    union(i, j)
    # a shorter name inside a longer one: BAXTER'S APARTMENT ~ BAXTER'S SAN FRANCISCO APARTMENT
    simple = [
        (i, (p.key or place_key(p.display)).split()) for i, p in enumerate(places)
        if " - " not in p.display
    ]
    by_ends: dict[tuple[str, str], list[tuple[int, list[str]]]] = defaultdict(list)
    for j, long in simple:
        if long:
            by_ends[(long[0], long[-1])].append((j, long))
    for i, short in simple:
        if len(short) < 2:
            continue
        roots = set()
        for j, long in by_ends[(short[0], short[-1])]:  # same first and last word only
            if len(long) <= len(short):
                continue
            it = iter(long)
            if not all(w in it for w in short):
                continue
            extra = list(long)
            for w in short:
                extra.remove(w)
            if any(w in _DISTINGUISHING for w in extra):
                continue
            roots.add(find(j))
        if len(roots) == 1:
            union(i, roots.pop())
    groups: dict[int, list[Place]] = defaultdict(list)
    for i, p in enumerate(places):
        groups[find(i)].append(p)
    out = []
    for members in groups.values():
        if len(members) == 1:  # most places: the variant is the place (no copy)
            merged = members[0]
        else:
            merged = Place(members[0].display)
            for m in members:
                merged.names.update(m.names)
                merged.aliases |= m.aliases
                for s, h in m.scenes.items():
                    merged.scenes.setdefault(s, h)
        merged.display = _best_name(merged)
        merged.aliases = {a for a in merged.aliases | set(merged.names) if a != merged.display}
        merged.scenes = dict(sorted(merged.scenes.items()))
        out.append(merged)
    return out


def _best_name(p: Place) -> str:
    def rank(name: str) -> tuple:
        plain = not name.startswith(_LEADS)
        return (p.names[name], plain, -name.count("-"), -len(name), name)

    return max(p.names, key=rank)
