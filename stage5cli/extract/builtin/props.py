"""Pass 1 for props: capitalised objects in action, objects handled repeatedly, and objects the
action keeps coming back to. Modest on purpose: a prop must be named in capitals as an object,
or be the object of handling verbs in more than one scene, or recur often for the script's size.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from stage5cli.extract.builtin.lexicon import (
    ANIMALS,
    BODY_PARTS,
    CAMERA_WORDS,
    CLOSED_CLASS,
    COLOURS,
    DETERMINERS,
    EVENT_WORDS,
    GARMENTS,
    GROUP_WORDS,
    HANDLED_OK,
    HANDLING_VERBS,
    MATERIALS,
    NOT_PROPS,
    NUMBER_WORDS,
    OBJECT_COMPOUNDS,
    OBJECT_NOUNS,
    OBJECT_SYNONYMS,
    PREPOSITIONS,
    SIZES,
    SOUND_CONTEXT,
    SOUND_WORDS,
    VEHICLE_TAGS,
    VEHICLES,
    VERB_PARTICLES,
    VISUAL_NOUNS,
    VISUAL_WORDS,
    is_person_word,
    singular,
)
from stage5cli.extract.builtin.text import CapsSpan, Index
from stage5cli.extract.names import Memo

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’\-]*|[0-9]+|--+|[.,;:!?\"()\[\]-]")
_PRONOUNS = frozenset("HIM HER THEM ME US YOU IT ITSELF HIMSELF HERSELF THEMSELVES".split())
# a word before a noun that shows the "noun" is really a verb ("he watches", "to ring")
_VERB_CONTEXT = frozenset(
    "HE SHE IT THEY WE I YOU WHO WHICH TO CAN COULD WILL WOULD SHOULD MUST MAY MIGHT NOT NEVER "
    "ALSO JUST DON'T DOESN'T DIDN'T WON'T CAN'T".split()
)
_ADJECTIVES = (COLOURS | SIZES | VISUAL_WORDS) - VISUAL_NOUNS - OBJECT_NOUNS
# a noun right before one of these names what something sounds like, not a thing that is there
# ("percussion brush sounds", "the metal brush rhythm", "a camera view")
_SOUND_HEADS = frozenset("SOUND SOUNDS NOISE NOISES RHYTHM RHYTHMS TUNE VIEW".split())
_ADVERBS = frozenset(
    "AGAIN AWAY BACK ASIDE TOGETHER OPEN CLOSED SHUT TIGHT TOO NOW THEN HERE THERE STILL EVEN "
    "ONLY FIRST LAST ONCE TWICE".split()
)


@dataclass(slots=True)
class Prop:
    head: str  # singular, lower case ("printer", "traffic light")
    phrases: Counter = field(default_factory=Counter)  # how the script names it
    caps: Counter = field(default_factory=Counter)  # capitalised names ("LASER PRINTER")
    handled: int = 0
    # the scenes it is handled in, in order, a repeat in a row once (handled_in() counts them):
    # a list, a third the size of a set, for the hundreds of thousands a hostile script makes
    handled_scenes: list[int] = field(default_factory=list)
    mentions: dict[int, tuple[str, str]] = field(default_factory=dict)  # scene -> (text, context)
    count: int = 0  # noun occurrences in action and dialogue
    caps_span: CapsSpan | None = None
    caps_spans: dict[str, CapsSpan] = field(default_factory=dict)  # first span of each caps name
    compound: str = ""  # the two-word name the script gives it ("remote control", "wedding ring")
    bare_head: bool = True  # the bare noun is one of its names (not for a split-off twin)
    twin_names: tuple[str, ...] = ()  # the other objects of the same noun: not its mentions
    set_name: str = ""  # the location this prop also is: a vehicle used as a heading

    def handled_in(self) -> int:
        """How many scenes it is handled in."""
        return len(set(self.handled_scenes))


_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_CAPS_RUN = re.compile(r"[A-Z]+")


def link_vehicles(index: Index, props: list[Prop], places: list) -> None:
    """A vehicle used as a heading (INT. PICKUP TRUCK, INT. LANDCRUISER - DRIVING) is a location
    and its prop: the prop of the same vehicle records the location as its set (one is made
    from the heading when the action never names it), so curation sees one vehicle."""
    by_head = {p.head: p for p in props}
    for place in places:
        words = [w.upper() for w in _WORD.findall(place.display)]
        if not words:
            continue
        head = singular(words[-1])
        display = place.display.upper()
        tagged = any(  # a heading that says the place moves: "INT. LANDCRUISER - DRIVING"
            t in VEHICLE_TAGS
            for h in place.scenes.values()
            for t in _CAPS_RUN.findall(h.upper().split(display)[-1])
        )
        if head not in VEHICLES and not tagged:
            continue
        if len(words) > 4 or _excluded(head.lower(), _NO_WORDS) and head not in VEHICLES:
            continue
        key = head.lower()
        p = by_head.get(key)
        if p is None and not tagged:
            continue  # a vehicle the action never names and no heading drives: a set only
        if p is None:
            p = Prop(key)
            props.append(p)
            by_head[key] = p
        p.set_name = place.display
        p.caps[place.display.upper()] += 1
        for scene, heading in sorted(place.scenes.items()):
            p.mentions.setdefault(scene, (place.display, heading[:240]))
        p.mentions = dict(sorted(p.mentions.items()))


_LEXICON_KEYS = frozenset(w.lower() for w in OBJECT_NOUNS)


def noun_like(t: str, key: str, prev: str) -> bool:
    """Is this occurrence a thing? "the phone rings", "he watches", "Edward rings" are verbs.

    A word ending in -s counts only after a determiner, possessive, number, preposition or
    adjective; any other word not after a subject pronoun, a modal or a name.
    """
    up_prev = prev.upper()
    if t[-1] in "sS" and key != t.lower():
        return (
            not prev[:1].isalpha()
            or up_prev in DETERMINERS
            or up_prev.endswith(("'S", "S'"))
            or up_prev in NUMBER_WORDS
            or up_prev in PREPOSITIONS
            or up_prev in _ADJECTIVES
        )
    if up_prev in _VERB_CONTEXT:
        return False
    name_before = (
        len(prev) > 1
        and prev[0].isupper()
        and prev[1:].islower()
        and up_prev not in DETERMINERS
        and not up_prev.endswith("'S")
    )
    return not name_before


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.replace("’", "'"))


_NOUN_KEYS: dict[str, str] = {}
_NO_WORDS: frozenset[str] = frozenset()


def noun_key(word: str) -> str:
    got = _NOUN_KEYS.get(word)
    if got is None:
        w = word.upper().replace("’", "'")
        if w.endswith("'S"):
            w = w[:-2]
        one = singular(w)
        got = OBJECT_SYNONYMS.get(one, one).lower()
        if len(_NOUN_KEYS) < 50_000:
            _NOUN_KEYS[word] = got
    return got


def _excluded(key: str, char_words: set[str]) -> bool:
    up = key.upper()
    if len(up) < 3 or not up.replace("-", "").isalpha() or up in CLOSED_CLASS:
        return True
    if up in HANDLED_OK:
        return False
    return (
        up in NOT_PROPS
        or up in BODY_PARTS
        or up in ANIMALS
        or up in _PRONOUNS
        or up in DETERMINERS
        or up in PREPOSITIONS
        or up in _ADVERBS
        or up.endswith("LY")
        or is_person_word(up)
        or (up in char_words and up not in OBJECT_NOUNS)
    )


def _handled_objects(tokens: list[str], char_words: set[str]):
    """(head, phrase) of each object after a handling verb: "picks up a stone" -> stone."""
    n = len(tokens)
    ups = [t.upper() for t in tokens]  # asked about again and again below
    if HANDLING_VERBS.isdisjoint(ups):
        return
    for i, tok in enumerate(ups):
        if tok not in HANDLING_VERBS:
            continue
        j = i + 1
        skipped = 0
        while j < n and ups[j] in VERB_PARTICLES and skipped < 2:
            j += 1
            skipped += 1
        # an indirect object: "hands Zacky his flashlight", "hands him the ring"
        if j + 1 < n and (ups[j] in _PRONOUNS or tokens[j][:1].isupper()):
            if ups[j + 1] in DETERMINERS or ups[j + 1].endswith("'S"):
                j += 1
        has_det = False
        while j < n and (
            ups[j] in DETERMINERS
            or ups[j].endswith(("'S", "S'"))
            or ups[j] in NUMBER_WORDS
        ):
            has_det = True
            j += 1
        words: list[str] = []
        while j < n and len(words) < 3:
            t = tokens[j]
            up = ups[j]
            if t == "," and words and words[-1].upper() in _ADJECTIVES:
                j += 1  # "a large, heavy crowbar"
                continue
            if not t[0].isalpha() or up in PREPOSITIONS or up in VERB_PARTICLES or up in _ADVERBS:
                break
            if up in HANDLING_VERBS and words:
                break
            if up in DETERMINERS:  # "all the car gauges": the phrase starts again
                words = []
                has_det = True
                j += 1
                continue
            words.append(t)
            j += 1
        if not words:
            continue
        head = noun_key(words[-1])
        if not has_det and head.upper() not in OBJECT_NOUNS:
            continue
        if _excluded(head, char_words):
            continue
        yield head, " ".join(w.lower() for w in words)


# the camera singles an object out: "We PUSH IN on the telegram", "CLOSE ON the fountain pen"
_SINGLED = re.compile(
    r"\b(?:PUSH(?:ES)?\s+IN|CLOSE\s+ON|ANGLE\s+ON|INSERT|ZOOMS?\s+IN|FOCUS\s+ON|CLOSE-?UP)"
    r"\s*(?:[-:–—]|\b(?:ON|OF|TO)\b)?\s*(?:the|a|an|his|her|their|its)\s+"
    r"((?:[a-z][a-z\-]*\s+){0,2}[a-z][a-z\-]*)",
    re.IGNORECASE,
)
_LIST_GAP = re.compile(
    r"^\s*(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+|/\s*)"
    r"(?:(?:a|an|the|some|two|three|four|several|his|her|their)\s+)?(?:[a-z][a-z\-]*\s+){0,2}$"
)
_OF_BEFORE = re.compile(r"(?:^|\s)([A-Za-z][a-z\-]*)\s+of\s+(?:(?:the|some|old|his|her)\s+)?$")


def _caps_object_ok(words: list[str], char_words: set[str]) -> str | None:
    """The head (singular, upper case) of a capitalised noun phrase that may be a prop."""
    core = [w.upper().replace("’", "'") for w in words]
    while core and (core[0] in DETERMINERS or core[0] in NUMBER_WORDS):
        core = core[1:]
    if not core or len(core) > 4:
        return None
    head = core[-1][:-2] if core[-1].endswith("'S") else core[-1]
    hp = singular(head)
    if any(w in char_words for w in core) or not hp.replace("-", "").isalpha():
        return None
    if (hp in GARMENTS or hp in SOUND_WORDS or head in SOUND_WORDS or hp in EVENT_WORDS
            or (hp in CAMERA_WORDS and hp not in OBJECT_NOUNS)):
        return None
    if any(w in CLOSED_CLASS or w in PREPOSITIONS for w in core):
        return None
    if _excluded(hp.lower(), _NO_WORDS):
        return None
    return hp


def caps_objects(index: Index, caps_props: list[tuple], char_words: set[str]) -> list[tuple]:
    """Capitalised objects the characters pass left unclaimed, as (phrase, HEAD, span):

    - a known object noun after a determiner ("a POLAROID CAMERA": CAMERA is also a camera
      direction word, so the characters pass lets it go);
    - the next items of a list that starts with a capitalised prop ("a ROTARY PHONE, VINYL
      RECORDS and a POLAROID CAMERA"), each kept as its whole noun phrase;
    - a plural after "<word> of" ("stacks of BARRELS", "a crate of BOTTLES"), not in a sound
      context ("the roar of ENGINES").
    """
    claimed = {id(span) for _, _, span in caps_props}
    last_prop_end: dict[int, int] = {}
    for _, _, span in caps_props:
        last_prop_end[span.para] = max(last_prop_end.get(span.para, -1), span.end)
    found: list[tuple] = []
    for span in sorted(index.caps, key=lambda s: (s.para, s.start)):
        if id(span) in claimed:
            last_prop_end[span.para] = max(last_prop_end.get(span.para, -1), span.end)
            continue
        if span.standalone:
            continue
        head = _caps_object_ok(span.words, char_words)
        if head is None:
            continue
        prev_end = last_prop_end.get(span.para, -1)
        text = index.paragraphs[span.para].text
        listed = 0 <= prev_end <= span.start and bool(_LIST_GAP.match(text[prev_end : span.start]))
        known = head in OBJECT_NOUNS and (span.det_before() or span.det_near())
        of = _OF_BEFORE.search(span.before[-40:])
        plural_of = (
            of is not None
            and of.group(1).upper() not in SOUND_CONTEXT
            and of.group(1).upper() not in GROUP_WORDS  # "a troupe of FIREBREATHERS"
            and singular(span.words[-1].upper()) != span.words[-1].upper()
        )
        if listed or known or plural_of:
            words = [w for w in span.words if w.upper() not in DETERMINERS]
            found.append((" ".join(w.upper() for w in words), head, span))
            last_prop_end[span.para] = span.end
    return found


def find_props(index: Index, caps_props: list[tuple], char_words: set[str]) -> list[Prop]:
    """Props of the script. `caps_props` come from the characters pass: (phrase, HEAD, span)."""
    props: dict[str, Prop] = Memo(Prop)
    get = props.__getitem__

    # 1. capitalised objects
    for phrase, head, span in [*caps_props, *caps_objects(index, caps_props, char_words)]:
        key = noun_key(head)
        words = phrase.split()
        if len(words) >= 2 and (words[-2], head) in OBJECT_COMPOUNDS:
            key = f"{words[-2].lower()} {key}"
        if _excluded(key.split()[-1], _NO_WORDS) and key.upper() not in OBJECT_NOUNS:
            continue
        # "JOHN DROPS THE LANTERN" (an all-caps line) -> "LANTERN"; not "KEY TO THE CITY"
        for i in range(len(words) - 1, 0, -1):
            if words[i].upper() in DETERMINERS and words[i - 1].upper() not in PREPOSITIONS:
                words = words[i + 1 :] or words
                break
        p = get(key)
        # "GIGANTIC STEYR-AUG SNIPER RIFLE" -> "STEYR-AUG SNIPER RIFLE"
        while len(words) > 2 and words[0] in SIZES:
            words = words[1:]
        p.caps[" ".join(words)] += 1
        p.caps_spans.setdefault(" ".join(words), span)
        if p.caps_span is None:
            p.caps_span = span

    # 1b. branded objects: "a beat-up old Mazda pickup", "his Rolex watch"
    for phrase, span_para in _brand_objects(index, char_words):
        p = get(noun_key(phrase.split()[-1]))
        p.caps[phrase.upper()] += 1
        p.caps_spans.setdefault(phrase.upper(), span_para)

    # 2. handled objects (action only), then occurrences of every candidate noun
    compounds = {f"{a.lower()} {b.lower()}" for a, b in OBJECT_COMPOUNDS}
    compound_heads = {c.split()[-1] for c in compounds}
    handled: list[tuple[str, str, int, int]] = []
    for pi, para in enumerate(index.paragraphs):
        if para.kind == "action":
            for head, phrase in _handled_objects(_tokens(para.text), char_words):
                handled.append((head, phrase, pi, para.scene))
    singled: set[str] = set()
    for para in index.paragraphs:
        if para.kind == "action":
            for m in _SINGLED.finditer(para.text):
                phrase = [t for t in _tokens(m.group(1)) if t[0].isalpha()]
                if phrase:
                    singled.add(noun_key(phrase[-1]))
    wanted = _LEXICON_KEYS | compound_heads | set(props) | {h for h, _, _, _ in handled}
    occurrences: dict[str, list[tuple[int, int]]] = defaultdict(list)  # key -> (para, scene)
    # key -> occurrences in action that name one object that is there: singular, not a modifier
    # of a sound or view, not after "the sound of" ("books" in a list, "a camera view", "the
    # sound of a percussion brush" are not the story's object)
    present: Counter = Counter()
    synonyms_seen: dict[str, Counter] = defaultdict(Counter)  # "chopper" for helicopter
    known_key = _NOUN_KEYS.get  # noun_key's memo, asked first (most words are in it)
    for pi, para in enumerate(index.paragraphs):
        if para.kind == "forced_heading":
            continue
        # tokenised again rather than kept from the loop above (a list per paragraph of a
        # 10 MB script is a hundred MB)
        tokens = _tokens(para.text)
        scene = para.scene
        action = para.kind == "action"
        prev = ""
        prev_key = ""
        for ti, t in enumerate(tokens):
            if not t[0].isalpha():
                prev, prev_key = t, ""
                continue
            key = known_key(t) or noun_key(t)
            if key in wanted:
                if key != t.lower() and singular(t.upper()) in OBJECT_SYNONYMS:
                    synonyms_seen[key][singular(t.lower())] += 1
                compound = f"{prev_key} {key}" if prev_key else ""
                if compound in compounds:  # "traffic lights": the pair names the thing
                    occurrences[compound].append((pi, scene))
                    occurrences[key].append((pi, scene))
                    if action and _present(tokens, ti, key):
                        present[compound] += 1
                elif noun_like(t, key, prev):
                    occurrences[key].append((pi, scene))
                    if action and _present(tokens, ti, key):
                        present[key] += 1
            prev, prev_key = t, key

    seen_in: dict[str, set[int]] = {}  # head -> paragraphs of its occurrences (made when asked)
    for head, phrase, pi, scene in handled:
        occ = occurrences[head]
        paras = seen_in.get(head)
        if paras is None:
            paras = seen_in[head] = {o[0] for o in occ}
        if pi not in paras:
            paras.add(pi)
            occ.append((pi, scene))  # "picks up the truck keys": the keys
        p = get(head)
        p.handled += 1
        if not p.handled_scenes or p.handled_scenes[-1] != scene:
            p.handled_scenes.append(scene)
        p.phrases[phrase] += 1
    del seen_in

    # 3. objects the script keeps coming back to
    threshold = max(3, round(len(index.scene_numbers) / 20))
    for key, occ in occurrences.items():
        if key in props:
            continue
        if key.upper() not in OBJECT_NOUNS and key not in compounds:
            continue
        if _excluded(key.split()[-1], char_words) and key not in compounds:
            continue
        if len(occ) >= threshold:
            get(key)

    kept: list[tuple[str, Prop]] = []
    for key, p in props.items():
        p.count = len(occurrences.get(key, ()))
        known_object = key.upper() in OBJECT_NOUNS or key in compounds
        if p.caps:
            keep = True
        elif known_object and not p.handled:
            # only recurring: the action must keep showing one such object, not the word (a
            # two-word object is already specific: twice is enough)
            keep = p.count >= threshold and present[key] >= (2 if key in compounds
                                                              else min(threshold, 3))
        elif known_object:
            # an object noun handled more than once or in more than one scene, or recurring
            keep = (
                p.handled_in() >= 2
                or p.handled >= 2
                or (p.handled >= 1 and (p.count >= 3 or key in singled))
                or p.count >= threshold
            )
        else:
            # any other noun must be handled in two scenes at least, or handled and singled out
            keep = p.handled_in() >= 2 or (p.handled >= 1 and key in singled)
        if keep:
            kept.append((key, p))

    def action_scenes(kp: tuple[str, Prop]):  # where its mentions can be
        key, p = kp
        paragraphs = index.paragraphs
        yield from (s for pi, s in occurrences.get(key, ()) if paragraphs[pi].kind == "action")
        if p.caps_span is not None:
            yield p.caps_span.scene

    # at most MAX_ASSETS_PER_KIND, the most-seen, get their mentions (the rest is left out)
    out: list[Prop] = []
    for key, p in index.most_seen("prop", kept, action_scenes):
        occ = occurrences.get(key, [])
        for word, n in synonyms_seen.get(key, {}).items():
            p.phrases[word] += n
        twins = _split_by_modifier(p, occurrences, compounds)
        _prop_mentions(index, p, occurrences.get(p.head, occ) if twins else occ)
        out.append(p)
        for twin in twins:
            _prop_mentions(index, twin, occurrences.get(twin.head, []))
            out.append(twin)
    # a compound wins over its head word when both were kept ("traffic light" vs "light")
    return out


def _distinct_modifiers(name: str) -> frozenset[str]:
    return frozenset(w for w in name.upper().split()[:-1] if w in COLOURS or w in MATERIALS)


def _split_by_modifier(p: Prop, occurrences: dict, compounds: set[str]) -> list[Prop]:
    """One head noun, two objects: "a BLACK BERETTA" and "a SILVER BERETTA", "her engagement
    ring" and "his wedding ring". Capitalised names whose colour or material words differ, and
    two-word object names (compounds) that differ, are separate props; the bare noun ("the
    Beretta", "the ring") stays with the first. A single compound names the prop ("the remote"
    and "a remote control" are the remote control). Returns the twins split off `p`."""
    twins: list[Prop] = []
    if p.caps and not p.set_name:
        names = list(p.caps_spans)  # in order of first appearance
        kept = [names[0]] if names else []
        for name in names[1:]:
            mods = _distinct_modifiers(name)
            if mods and all(mods != _distinct_modifiers(k) and _distinct_modifiers(k)
                            for k in kept):
                kept.append(name)
        for name in kept[1:]:
            twin = Prop(p.head, caps_span=p.caps_spans[name], bare_head=False)
            twin.caps[name] = p.caps.pop(name)
            twin.caps_spans[name] = p.caps_spans.pop(name)
            for ph in [ph for ph in p.phrases if ph.endswith(name.lower())]:
                twin.phrases[ph] = p.phrases.pop(ph)
            twins.append(twin)
        if twins:
            p.caps_span = p.caps_spans[kept[0]]
            for one in (p, *twins):
                one.twin_names = tuple(k.lower() for k in kept if k not in one.caps)
        return twins
    if p.caps or " " in p.head:
        return twins
    found = sorted((occ[0], c) for c in compounds
                   if p.head in c.split() and (occ := occurrences.get(c)))
    if not found:
        return twins
    p.compound = found[0][1]
    for _, c in found[1:]:
        twin = Prop(c, compound=c, bare_head=False)
        for ph in [ph for ph in p.phrases if ph.endswith(c)]:
            twin.phrases[ph] = p.phrases.pop(ph)
        occ = occurrences[c]
        twin.count = len(occ)
        twins.append(twin)
    return twins


_BRAND = re.compile(
    r"\b(?:a|an|the|his|her|their|its|my|your|our)\s+(?:[a-z][a-z'\-]*\s+){0,3}"
    r"((?:[A-Z][a-z][A-Za-z\-]*\s+){1,2}(?:[A-Z0-9][A-Za-z0-9]*\s+)?)([a-z]+)\b"
)


def _brand_objects(index: Index, char_words: set[str]):
    """(phrase, span) of each object a capitalised name brands in action: a mixed-case make or
    model after a determiner and right before a known object noun ("a beat-up old Mazda
    pickup", "her Nikon camera"), not a character's name ("the Bloom car")."""
    for pi, para in enumerate(index.paragraphs):
        if para.kind != "action":
            continue
        for m in _BRAND.finditer(para.text):
            noun = m.group(2)
            if noun.upper() not in OBJECT_NOUNS or singular(noun.upper()) != noun.upper():
                continue
            brand = m.group(1).split()
            # a name, not a capitalised common word ("her Unicorn horn", "the Red Cross van")
            if any(w.upper() in char_words or w.upper() in DETERMINERS or w.upper() in ANIMALS
                   or w.upper() in OBJECT_NOUNS or w.upper() in COLOURS or w.upper() in MATERIALS
                   or is_person_word(w) for w in brand):
                continue
            phrase = " ".join([*brand, noun])
            span = CapsSpan(phrase.split(), para.scene, pi, m.start(1), m.end(2), para.text)
            yield phrase, span


def _present(tokens: list[str], i: int, key: str) -> bool:
    """Does tokens[i] (a noun occurrence of `key`) name one object that is there?"""
    t = tokens[i]
    if t.upper().endswith("'S") or (noun_key(t) == key and t.lower() != key
                                     and singular(t.upper()) not in OBJECT_SYNONYMS):
        return False  # a possessive ("the car's engine") or a plural ("books, papers")
    nxt = tokens[i + 1].upper() if i + 1 < len(tokens) else ""
    if nxt in _SOUND_HEADS:
        return False
    back = [w.upper() for w in tokens[max(0, i - 5) : i]]
    for j in range(len(back) - 1, 0, -1):
        if back[j] == "OF":
            return back[j - 1] not in SOUND_CONTEXT  # "the sound of a percussion brush"
        if not back[j][:1].isalpha():
            break
    return True


def _prop_mentions(index: Index, p: Prop, occ: list[tuple[int, int]]) -> None:
    words = p.head.split()
    looked: set[int] = set()  # paragraphs already searched (one noun is there many times)
    lowered = index.cache.setdefault("lowered_sentences", {})  # (para, sentence) -> lower case
    for pi, scene in occ:
        para = index.paragraphs[pi]
        if para.kind != "action" or scene in p.mentions or pi in looked:
            continue
        looked.add(pi)
        sents = index.para_sentences(pi)
        for si in _sentences_with(index, pi).get(words[0], ()):  # only those with the first word
            if p.twin_names:
                low = lowered.get((pi, si))
                if low is None:
                    low = lowered[(pi, si)] = sents[si].lower()
                if any(t in low for t in p.twin_names):
                    continue  # "his SILVER BERETTA" is not a mention of the black one
            # one word: its sentences are those _sentences_with gave (a compound is looked
            # for word by word)
            if len(words) == 1 or _contains(sents[si], words):
                p.mentions[scene] = (p.head, sents[si][:240])
                break
    if p.caps_span is not None and p.caps_span.scene not in p.mentions:
        para = index.paragraphs[p.caps_span.para]
        p.mentions[p.caps_span.scene] = (p.caps_span.text, para.text[:240])
    p.mentions = dict(sorted(p.mentions.items()))


def _sentences_with(index: Index, pi: int) -> dict[str, list[int]]:
    """noun key -> indices of the sentences of paragraph pi holding it (built once per
    paragraph, so finding a mention costs the sentences that can hold it, not the paragraph)."""
    cache = index.cache.setdefault("sentences_with", {})
    got = cache.get(pi)
    if got is None:
        got = {}
        for si, s in enumerate(index.para_sentences(pi)):
            for t in _tokens(s):
                if t[0].isalpha():
                    sis = got.setdefault(noun_key(t), [])
                    if not sis or sis[-1] != si:
                        sis.append(si)
        cache[pi] = got
    return got


def _contains(sentence: str, words: list[str]) -> bool:
    keys = [noun_key(t) for t in _tokens(sentence) if t[0].isalpha()]
    n = len(words)
    return any(keys[i : i + n] == words for i in range(len(keys) - n + 1))


def prop_name(p: Prop) -> str:
    """The name shown: a capitalised name from the script, else its usual phrase, else the noun."""
    if p.caps:
        names = p.caps.most_common()
        if len(names) == 1 or names[0][1] > names[1][1]:
            return names[0][0].lower()
        return p.head
    if p.compound:
        return p.compound
    good = [
        (c, ph)
        for ph, c in p.phrases.items()
        if c >= 2
        and len(ph.split()) <= 3
        and noun_key(ph.split()[-1]) == p.head.split()[-1]
        and not any(
            w.upper() in COLOURS or w.upper() in SIZES or "-" in w or w.endswith(("ing", "ed"))
            for w in ph.split()[:-1]
        )
    ]
    if good:
        return max(good)[1]
    return p.head


def prop_aliases(p: Prop, name: str) -> list[str]:
    seen = {name.lower()}
    out = []
    for ph in [*p.caps, *(ph for ph, _ in p.phrases.most_common(6))]:
        if ph.lower() not in seen:
            seen.add(ph.lower())
            out.append(ph.lower() if ph.isupper() else ph)
    if p.head not in seen and p.bare_head:
        out.append(p.head)
    return out[:8]
