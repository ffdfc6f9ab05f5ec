"""Pass 1 for characters: cues, capitalised introductions in action, alias merging, mentions."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from stage5cli.extract.names import AGE_AFTER, WORD_CACHE, Memo, UnionFind, title_case, whole_words

from .lexicon import (
    AGE_PREFIXES,
    ANIMALS,
    BODY_PARTS,
    CAMERA_WORDS,
    DETERMINERS,
    EVENT_WORDS,
    GARMENTS,
    GROUP_PREFIXES,
    GROUP_WORDS,
    NUMBER_WORDS,
    OBJECT_COMPOUNDS,
    OBJECT_NOUNS,
    PLACE_NOUNS,
    PREPOSITIONS,
    SOUND_WORDS,
    TITLES,
    is_person_word,
    is_plural_person,
    singular,
)
from .text import UPPER, WINDOW, CapsSpan, Index, in_quotes

# a group that speaks this many times is kept as a character ("unless they speak a lot")
GROUP_MIN_LINES = 5
_JOINT = re.compile(r"\s+(?:AND|&)\s+|\s*/\s*")
_DIGITS = re.compile(r"^\d+$")
_POSSESSIVE = re.compile(r"'S\b")
_AND_SPLIT = re.compile(r"\s+(?:AND|&)\s+")
_EPITHET = re.compile(r"(?<![\w'])([Tt]he) ([A-Z][a-z]+)\b(?!\s+[A-Z][a-z])")
# Title + Surname, then a present-tense verb: "Mr. Hoff takes", "Dr. Ortiz is", "Sgt. Poole FIRES"
_TITLE_FORMS = sorted({t.rstrip(".").title() for t in TITLES}, key=len, reverse=True)
_TITLED_ACTOR = re.compile(
    r"(?<![\w.])(?P<name>(?:" + "|".join(map(re.escape, _TITLE_FORMS)) + r")\.?\s+"
    rf"[{UPPER}][a-zà-ÿ'’\-]+(?:\s[{UPPER}][a-zà-ÿ'’\-]+)?)"
    rf"(?=\s+(?:is|has|[a-z]{{2,}}s|[{UPPER}]{{2,}}S)\b)"
)
_TITLES = frozenset(t.rstrip(".") for t in TITLES)


@lru_cache(maxsize=WORD_CACHE)  # pure; asked for every span and name, many times each
def character_key(name: str) -> str:
    """Matching form of a character name: upper case, no leading article, no periods/possessive."""
    n = name.upper().replace("’", "'")
    n = _POSSESSIVE.sub("", n)
    n = n.replace(".", " ").replace(",", " ")
    words = n.split()
    while len(words) > 1 and words[0] in ("THE", "A", "AN"):
        words = words[1:]
    return " ".join(words)


def core_tokens(key: str) -> list[str]:
    """Tokens of a key without leading titles and age words: YOUNG DR BENNETT -> [BENNETT]."""
    words = key.split()
    while len(words) > 1 and (words[0] in _TITLES or words[0] in AGE_PREFIXES):
        words = words[1:]
    return words


@lru_cache(maxsize=WORD_CACHE)  # pure; asked for every name's every variant
def is_generic(key: str) -> bool:
    """A name made only of common person words (WOMAN, OLD MAN, SECURITY GUARD's GUARD)."""
    words = key.split()
    return bool(words) and all(
        is_person_word(w) or w in AGE_PREFIXES or w in ("VOICE", "THE") for w in words
    )


@dataclass(slots=True)
class Character:
    key: str
    names: Counter = field(default_factory=Counter)  # spelling -> times seen
    lines: int = 0
    cue_scenes: set[int] = field(default_factory=set)
    from_cue: bool = False
    group: bool = False
    intro: CapsSpan | None = None
    ages: list[tuple[int, int]] = field(default_factory=list)  # (scene, age)
    # scene -> (text, context, kind) where kind is "cue" or "action"
    mentions: dict[int, tuple[str, str, str]] = field(default_factory=dict)


def standalone_cues(cues) -> frozenset[str]:
    """Keys of the cues that name one speaker (no AND, & or /)."""
    names = {c.name for c in cues}  # each spelling once (a script has thousands of cues)
    return frozenset(character_key(n) for n in names if len(_JOINT.split(n)) == 1)


def split_joint(name: str, standalone: frozenset[str] = frozenset()) -> list[str]:
    """The speakers of a joint cue: EDWARD AND WILL -> EDWARD, WILL.

    A numbered pair shares its noun: PATRONS THREE AND FOUR is PATRON THREE and PATRON FOUR
    only when those names speak on their own elsewhere (`standalone`); otherwise the cue is
    kept whole (a group), rather than inventing two names the script never uses.
    """
    parts = [p.strip() for p in _JOINT.split(name) if p.strip()]
    if len(parts) < 2:
        return [name]
    first = parts[0].split()
    if len(first) >= 2 and (first[-1] in NUMBER_WORDS or _DIGITS.match(first[-1])):
        head = " ".join(singular(w) for w in first[:-1])
        out = [f"{head} {first[-1]}"]
        for p in parts[1:]:
            words = p.split()
            if len(words) == 1 and (words[0] in NUMBER_WORDS or _DIGITS.match(words[0])):
                out.append(f"{head} {words[0]}")
            else:
                out.append(p)
        if all(character_key(o) in standalone for o in out):
            return out
        return [name]
    return parts


def _used_as_name(index: Index, word: str) -> bool:
    """Is a capitalised word used as a proper name in the action: Title case mid-sentence
    without a determiner ("with Beamen", "Carmen nods" after a comma), not "the Firemen"?"""
    pattern = re.compile(rf"(\S+)\s+{re.escape(word[:1] + word[1:].lower())}\b")
    named = re.compile(rf"\b(?:named|called)\s+{re.escape(word)}\b", re.IGNORECASE)
    for p in index.paragraphs:
        if p.kind != "action":
            continue
        if named.search(p.text):
            return True
        for m in pattern.finditer(p.text):
            prev = m.group(1)
            if prev[-1:].isalpha() and prev.upper() not in DETERMINERS and not prev[:1].isupper():
                return True
    return False


def _is_group(name: str, extensions: list[str]) -> bool:
    words = character_key(name).split()
    if not words:
        return True
    if any(w in GROUP_WORDS for w in words) or is_plural_person(words[-1]):
        return True
    if words[0] in GROUP_PREFIXES and len(words) > 1 and words[-1].endswith("S"):
        return True
    ext = " ".join(extensions).upper()
    return "VARIOUS" in ext or ext.strip() in ("ALL", "TOGETHER", "IN UNISON")


def _strip_det(words: list[str]) -> list[str]:
    out = list(words)
    while out and (out[0].upper() in DETERMINERS or out[0].upper() in NUMBER_WORDS):
        out = out[1:]
    return out


def _head(words: list[str]) -> tuple[str, list[str]]:
    """Head noun of a caps phrase and the phrase itself: KEY TO THE CITY -> KEY."""
    for i, w in enumerate(words):
        if i > 0 and w.upper() in PREPOSITIONS:
            return words[i - 1], words
    return words[-1], words


def classify_span(span: CapsSpan, known: dict[str, str], known_tokens: set[str],
                  memo: dict | None = None):
    """What a capitalised span in action is.

    Returns ("mention", key), ("character", name), ("prop", phrase, head) or None.
    `known` maps character keys (cue names) to themselves; `known_tokens` holds single-word cores.
    What its words alone decide (_read_words) is kept in `memo` when given, for one `known`:
    a script writes the same capitalised names hundreds of times; only the text around each
    span is read again.
    """
    key = (*span.words, span.standalone)
    read = memo.get(key) if memo is not None else None
    if read is None:
        read = _read_words(span.words, span.standalone, known, known_tokens)
        if memo is not None and len(memo) < WORD_CACHE:  # bounded: a script of distinct names
            memo[key] = read
    step, got, tail = read
    if step == "done":
        return got
    if step == "object":  # a known object noun: after a determiner (or plainly one)
        return got if span.det_before() else None
    # a short unknown phrase: introduced as a person, or an object after a determiner
    if span.age_after() is not None or span.appositive_after() or span.intro_before():
        return ("character", tail)
    if got is not None and span.det_near() and not span.modifies_next():
        return got
    return None


def _read_words(span_words: list[str], standalone: bool, known: dict[str, str],
                known_tokens: set[str]) -> tuple:
    """classify_span's reading of a span's words: ("done", result, None), ("object", prop,
    None) when it is a prop if a determiner comes before it, or ("context", prop or None,
    name) when the text around it decides (a person introduced, an object after a determiner)."""
    words = [w.upper().replace("’", "'") for w in span_words]
    # camera prefixes and "aka": ON SANDRA, ANGLE ON EDWARD, AKA DAN
    while len(words) > 1 and (words[0] in CAMERA_WORDS or words[0] in ("AKA", "A.K.A.")):
        words = words[1:]
    while standalone and len(words) > 1 and words[0] in PREPOSITIONS:
        words = words[1:]  # AT THE CAR
    done = ("done", None, None)
    if words and (words[0].endswith("ING") and words[0] not in OBJECT_NOUNS) and standalone:
        return done  # GRABBING THE SNAKE, SMASHING DOWN THREE CARS: an action line
    whole = character_key(" ".join(words))
    if whole in known:
        return ("done", ("mention", whole), None)
    if " ".join(core_tokens(whole)) in known and not is_generic(" ".join(core_tokens(whole))):
        return ("done", ("character", " ".join(words)), None)  # GROWN-UP EDWARD, YOUNG WILL
    # joint mention: BRICK AND STEEL
    if "AND" in words or "&" in words:
        parts = [character_key(p) for p in _AND_SPLIT.split(" ".join(words))]
        if parts and all(p in known for p in parts):
            return ("done", ("mention", parts[0], *parts[1:]), None)
        return done
    core = _strip_det(words)
    if not core:
        return done
    quantified = len(core) < len(words) and any(
        w in NUMBER_WORDS or w in GROUP_PREFIXES for w in words[: len(words) - len(core)]
    )
    plain = [w[:-2] if w.endswith("'S") else w for w in core]
    last = plain[-1]
    if last in SOUND_WORDS or last in CAMERA_WORDS or last in EVENT_WORDS:
        # "THE PHONE RINGS AGAIN", "ANGLE ON", "A LAUGH": events, not things or people
        if not (len(plain) > 1 and is_person_word(plain[-1])):
            return done
    head, phrase = _head(core)
    head_plain = singular(head[:-2] if head.endswith("'S") else head)
    # a possessive owner: SCOTT'S PAINTINGS, EDWARD'S PARACHUTE, BAKER'S WIFE
    if len(core) >= 2 and core[0].endswith("'S"):
        rest = core[1:]
        rhead, rphrase = _head(rest)
        if is_person_word(rhead) and not is_plural_person(rhead):
            return ("done", ("character", " ".join(core)), None)
        if singular(rhead) in OBJECT_NOUNS:
            return ("done", ("prop", " ".join(rphrase), singular(rhead)), None)
        return done
    if head_plain in GARMENTS:
        return done  # BLUE COAT: wardrobe, described with its wearer
    if head_plain in OBJECT_NOUNS or (
        len(core) >= 2 and (core[-2], head_plain) in OBJECT_COMPOUNDS
    ):
        prop = ("prop", " ".join(phrase), head_plain)
        if standalone or words[0] in DETERMINERS or len(core) >= 2:
            return ("done", prop, None)
        return ("object", prop, None)
    if core[0] in GROUP_PREFIXES or quantified:
        return done
    grouped = not GROUP_WORDS.isdisjoint(plain)
    if grouped or is_plural_person(head):
        return done
    if head_plain in BODY_PARTS:
        return done
    if head_plain in ANIMALS:
        if head_plain in known:
            return ("done", ("mention", head_plain), None)
        return done
    if is_person_word(head) and len(core) <= 5:
        return ("done", ("character", " ".join(phrase)), None)
    # extension of a known name: KARL THE GIANT, WILL BLOOM, DICK STEEL, DR. JULIUS BENNETT
    ctoks = core_tokens(character_key(" ".join(core)))
    if 2 <= len(ctoks) <= 3 and (ctoks[0] in known_tokens or ctoks[-1] in known_tokens):
        if not any(w in OBJECT_NOUNS for w in ctoks):
            return ("done", ("character", " ".join(core)), None)
    if standalone:
        return done
    if not (PREPOSITIONS.isdisjoint(core) and SOUND_WORDS.isdisjoint(core)
            and CAMERA_WORDS.isdisjoint(core)):
        return done
    if len(core) <= 3 and not any(w.isdecimal() for w in core):  # (what _DIGITS matches)
        # Screenwriters capitalise the objects that matter: "a long brass LIGHTER", "her
        # dented RED THERMOS". An unknown noun in CAPS right after a determiner is a prop.
        prop_ok = (not is_person_word(head) and head_plain not in PLACE_NOUNS
                   and not grouped and len(head_plain) >= 3 and not head_plain.endswith("ING"))
        return ("context", ("prop", " ".join(phrase), head_plain) if prop_ok else None,
                " ".join(core))
    return done


def find_characters(index: Index) -> tuple[list[Character], list[tuple]]:
    """Characters of the script and the prop candidates seen in capitalised spans.

    Returns (characters, caps_props) where caps_props are (phrase, head, span) tuples for the
    props pass.
    """
    chars: dict[str, Character] = Memo(Character)
    get = chars.__getitem__  # the character of a key, made when new
    def existing(key: str) -> Character:
        """The character of a key of `known`: always one already (a nickname's target is a
        known key, a speaker's by the token of its core: DR BOB for BOB)."""
        c = chars.get(key)
        if c is None:
            raise KeyError(key)
        return c

    # 1. cues
    alone = standalone_cues(index.cues)
    # what a cue's spelling says is the same every time it speaks: read once per spelling
    speakers: dict[str, list[tuple[str, str]]] = {}  # cue name -> (part, key) of its speakers
    groups: dict[tuple, bool] = {}  # (part, extensions) -> _is_group
    for cue in index.cues:
        parts = speakers.get(cue.name)
        if parts is None:
            parts = speakers[cue.name] = [
                (part, key) for part in split_joint(cue.name, alone)
                if (key := character_key(part)) and any(ch.isalpha() for ch in key)]
        for part, key in parts:
            c = get(key)
            c.names[part] += 1
            c.lines += 1
            c.cue_scenes.add(cue.scene)
            c.from_cue = True
            group = groups.get((part, *cue.extensions))
            if group is None:
                group = groups[(part, *cue.extensions)] = _is_group(part, cue.extensions)
            if group:
                c.group = True
            if cue.scene not in c.mentions:
                said = cue.line[:160]
                c.mentions[cue.scene] = (part, f'{part}: "{said}"' if said else part, "cue")
    for k, c in chars.items():
        if c.group and " " not in k and k.endswith("MEN") and _used_as_name(index, k):
            c.group = False  # BEAMEN, CARMEN: a name that happens to end in -men
    known = {k: k for k, c in chars.items() if not (c.group and c.lines < GROUP_MIN_LINES)}
    known_tokens = {core_tokens(k)[0] for k in known if len(core_tokens(k)) == 1}
    known_tokens = {t for t in known_tokens if not is_generic(t) and len(t) >= 2}
    by_token: dict[str, str] = {}  # a single-word core -> the speaker's key (itself when one)
    for k in known:
        toks = core_tokens(k)
        if len(toks) == 1 and (toks[0] not in by_token or k == toks[0]):
            by_token[toks[0]] = k

    # 1b. a creature called by a capitalised epithet: "This is The Beast." ... "the Beast
    # spits out the ring", "looks at the Dragon". Capitalised more than once, at least once
    # after a lower-case "the" or mid-sentence, the noun is a name, not a species.
    epithets: dict[str, list[bool]] = defaultdict(list)
    for p in index.paragraphs:
        if p.kind == "action" and ("the " in p.text or "The " in p.text):
            for m in _EPITHET.finditer(p.text):
                if m.group(2).upper() in ANIMALS:
                    mid = m.group(1) == "the" or p.text[:m.start()].rstrip()[-1:].isalnum()
                    epithets[m.group(2).upper()].append(mid)
    for noun, mids in epithets.items():
        if len(mids) >= 2 and any(mids) and noun not in known:
            c = get(noun)
            c.names[f"THE {noun}"] += 1
            known[noun] = noun

    # 2a. nicknames in an introduction: ANNABEL "BELL" CROSS, K-9 UNIT ("REX")
    nick_ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    caps_by_para: dict[int, list[CapsSpan]] = defaultdict(list)
    nicks = list(_nicknames(index))
    if nicks:
        wanted = {n[0] for n in nicks}
        for sp in index.caps:
            if sp.para in wanted:
                caps_by_para[sp.para].append(sp)
    for pi, name, nick, start, end in nicks:
        nkey, fkey = character_key(nick), character_key(name)
        if nkey in known:
            target = nkey
        elif fkey in known:
            target = fkey
        elif core_tokens(fkey) and core_tokens(fkey)[0] in known_tokens:
            target = by_token[core_tokens(fkey)[0]]  # BOB "BOBBY" SMITH -> the speaker DR BOB
        else:
            continue  # not linked to anyone who speaks: left to the capitals rules
        c = existing(target)
        for n in (name, nick):
            if character_key(n) != target:
                c.names[n] += 1
        nick_ranges[pi].append((start, end))
        span = next((sp for sp in caps_by_para.get(pi, ()) if start <= sp.start < end), None)
        if span is not None and (c.intro is None or (span.scene, span.para) < (
                c.intro.scene, c.intro.para)):
            c.intro = span
        age = AGE_AFTER.match(index.paragraphs[pi].text, end)
        if age is not None:
            c.ages.append((index.paragraphs[pi].scene, int(age.group("age"))))

    # 2. capitalised spans in action
    caps_props: list[tuple] = []
    read: dict = {}  # classify_span's readings of each distinct span, for this `known`
    named: list[tuple[CapsSpan, str]] = []  # character spans in text order
    for span in index.caps:
        ranges = nick_ranges.get(span.para)
        if ranges and _inside(ranges, span.start):
            continue  # part of a nickname introduction, handled above
        got = classify_span(span, known, known_tokens, read)
        if got is None:
            continue
        if got[0] == "prop":
            caps_props.append((got[1], got[2], span))
            talker = chars.get(got[2]) if got[2] in known else None
            if talker is not None and talker.from_cue and character_key(got[1]) != got[2]:
                # a thing that speaks (cue PRINTER) introduced as "a weathered LASER PRINTER":
                # the phrase names the character too, and introduces it
                talker.names[got[1]] += 1
                if talker.intro is None:
                    talker.intro = span
            continue
        if got[0] == "mention":
            named.append((span, got[-1]))
            for key in got[1:]:
                c = existing(key)
                if c.intro is None:
                    c.intro = span
            age = span.age_after()
            if age is not None:  # "MAYA AND JOAN (40s)": the age is the nearest name's only
                existing(got[-1]).ages.append((span.scene, age))
            continue
        name = got[1]
        key = character_key(name)
        named.append((span, key))
        c = get(key)
        c.names[name] += 1
        if c.intro is None:
            c.intro = span
        age = span.age_after()
        if age is not None:
            c.ages.append((span.scene, age))

    # 2b. a titled name in action, doing something: "Mr. Hoff takes both rounds", "Dr. Ortiz
    # checks the chart". Writers often never capitalise such a person; a title and a
    # capitalised surname followed by a present-tense verb is someone on screen ("a Dr. Seuss
    # book", "Dr. Seuss on you" and every mention in dialogue are not).
    for p in index.paragraphs:
        if p.kind != "action":
            continue
        for m in _TITLED_ACTOR.finditer(p.text):
            name = " ".join(m.group("name").split())
            up = name.upper()
            key = character_key(up)
            toks = core_tokens(key)
            if not toks or key in known or any(t in known_tokens for t in toks):
                continue  # someone who speaks: their mentions are scanned later
            if in_quotes(p.text, m.start()):
                continue
            if any(is_person_word(t) or t in OBJECT_NOUNS for t in toks):
                continue  # a common noun after the title is no surname: "Captain Boat", "Dr. Nurse"
            c = get(key)
            c.names[up] += 1

    live = {k: c for k, c in chars.items() if not (c.group and c.lines < GROUP_MIN_LINES)}

    # 3. aliases
    uf: UnionFind[str] = UnionFind(live)
    cores = {k: core_tokens(k) for k in live}
    # YOUNG X / ADULT X -> X;  DR. BENNETT ~ DR. JULIUS BENNETT (same core)
    by_core: dict[str, list[str]] = defaultdict(list)
    for k, toks in cores.items():
        by_core[" ".join(toks)].append(k)
    for ks in by_core.values():
        if len(ks) > 1 and not is_generic(" ".join(cores[ks[0]])):
            for other in ks[1:]:
                uf.union(ks[0], other)
    for k in live:
        words = k.split()
        if len(words) >= 2 and words[0] in AGE_PREFIXES:
            base = " ".join(words[1:])
            if base in live and not is_generic(base):
                uf.union(k, base)
    # first / last name: BOB ~ CYBER BOB, ZACKY ~ ZACKY PRICE, BILLUPS ~ JACOB BILLUPS
    singles = {k: toks[0] for k, toks in cores.items() if len(toks) == 1}
    # a possessive name is a relation, not a full name: WILL'S DATE is not WILL
    multis = {
        k: toks
        for k, toks in cores.items()
        if len(toks) >= 2 and not any("'S " in n.upper() for n in live[k].names)
    }
    prefixes: set[str] = set()
    for k, tok in singles.items():
        if is_generic(tok):
            continue
        hits = [m for m, toks in multis.items() if toks[0] == tok or toks[-1] == tok]
        roots = {uf.find(m) for m in hits}
        if len(roots) == 1:
            uf.union(k, hits[0])
            for m in hits:
                if multis[m][-1] == tok:
                    prefixes.add(" ".join(multis[m][:-1]))
    # the script's own pattern makes a generic one merge too: CYBER BOB/BOB -> CYBER BOSS/BOSS
    for k, tok in singles.items():
        if is_generic(tok):
            for p in prefixes:
                if f"{p} {tok}" in live:
                    uf.union(k, f"{p} {tok}")
    # a role named in full once and by its bare noun in the same scene: "a HEAVYSET NURSE"
    # ... NURSE, "a PIANO STUDENT" ... STUDENT, WILL'S DATE ... DATE: the bare noun is that
    # person when exactly one fuller name ending with it shares a scene with it (a LITTLE GIRL
    # elsewhere in the script does not make the PRETTY GIRL of this scene ambiguous)
    def _scenes(c: Character) -> set[int]:  # (mentions are scanned after the merge)
        return set(c.cue_scenes) | ({c.intro.scene} if c.intro is not None else set())

    for k, tok in singles.items():
        if not is_generic(tok) or k != tok:  # the bare noun itself, not YOUNG WOMAN's core
            continue
        mine = _scenes(live[k])
        hits = [m for m in live if m != k and len(m.split()) >= 2 and m.split()[-1] == tok
                and _scenes(live[m]) & mine]
        roots = {uf.find(m) for m in hits}
        if len(roots) == 1 and uf.find(k) not in roots:
            uf.union(k, hits[0])
    # a cue introduced with more words: HANDSOME MAN <- EXTREMELY HANDSOME MAN
    for k, c in live.items():
        if c.from_cue or len(k.split()) < 3:
            continue
        words = k.split()
        for n in range(2, len(words)):
            tail = " ".join(words[-n:])
            if tail in live and live[tail].from_cue:
                uf.union(k, tail)
                break

    # a label the text then names: "the DRIVER, a man in his forties ... This is SPALDING
    # JEAGER." (the latest generic label earlier in the same paragraph)
    for n, (span, key) in enumerate(named):
        if key not in live or is_generic(key) or not span.intro_before():
            continue
        for prev, pkey in reversed(named[max(0, n - 5):n]):
            if prev.para != span.para:
                break
            if pkey in live and pkey != key and is_generic(pkey) and not live[pkey].from_cue:
                uf.union(key, pkey)
                break
    # a relation introduced with its owner: YOUNG TOM'S MOTHER (40s) <- the cue MOTHER, when
    # exactly one introduction ends so
    relations: dict[str, list[str]] = defaultdict(list)
    for k, c in live.items():
        if c.from_cue:
            continue
        for n in c.names:
            up = " ".join(n.upper().replace("’", "'").split())
            if "'S " in up:
                relations[character_key(up.rsplit("'S ", 1)[1])].append(k)
                break
    for tail, ks in relations.items():
        if tail in live and live[tail].from_cue and len(set(ks)) == 1:
            uf.union(ks[0], tail)

    groups: dict[str, list[Character]] = defaultdict(list)
    for k, c in live.items():
        groups[uf.find(k)].append(c)
    # at most MAX_ASSETS_PER_KIND, the most-seen (the scenes they speak or are introduced in),
    # get their mentions scanned (the rest is left out)
    merged = index.most_seen("character", [_combine(members) for members in groups.values()],
                             _scenes)
    _scan_mentions(index, merged)
    return merged, caps_props


_CAPS_RUN = rf"[{UPPER}0-9][{UPPER}0-9'’.\-]*(?:\s+[{UPPER}0-9][{UPPER}0-9'’.\-]*)*"
# NAME "NICK" SURNAME, NAME ("NICK"), NAME, "NICK",: a quoted or bracketed name inside an
# introduction in capitals
_NICKNAME = re.compile(
    rf"(?<![\w'])(?P<first>{_CAPS_RUN})\s*,?\s*(?P<open>\(\s*)?[\"“](?P<nick>{_CAPS_RUN})[\"”]"
    rf"(?(open)\s*\))(?:\s+(?P<last>{_CAPS_RUN}))?(?![\w'])"
)


def _inside(ranges: list[tuple[int, int]], pos: int) -> bool:
    i = bisect_right(ranges, (pos, 1 << 62)) - 1  # ranges are in text order, disjoint
    return i >= 0 and ranges[i][0] <= pos < ranges[i][1]


def _nicknames(index: Index):
    """(paragraph, full name, nickname, start, end) of each nickname introduction in action."""
    for pi, p in enumerate(index.paragraphs):
        if p.kind != "action" or ('"' not in p.text and "“" not in p.text):
            continue
        for m in _NICKNAME.finditer(p.text):
            first, nick, last = m.group("first"), m.group("nick"), m.group("last") or ""
            if not any(ch.isalpha() for ch in nick) or len(nick.split()) > 3:
                continue
            if len(first.split()) > 4 or len(last.split()) > 2:
                continue
            words = f"{first} {last}".split()
            while len(words) > 1 and words[0] in ("A", "AN", "THE"):
                words = words[1:]
            yield pi, " ".join(words), nick, m.start(), m.end()


def _combine(members: list[Character]) -> Character:
    if len(members) == 1:  # most characters have no alias to merge: no copy to make
        only = members[0]
        only.ages = sorted(set(only.ages))
        return only
    # the canonical name: the most used cue spelling, else the first introduction
    def weight(c: Character) -> tuple:
        return (c.lines, c.from_cue, len(c.key.split()), c.key)

    best = max(members, key=weight)
    out = Character(best.key)
    for c in members:
        out.names.update(c.names)
        out.lines += c.lines
        out.cue_scenes |= c.cue_scenes
        out.from_cue |= c.from_cue
        out.group |= c.group
        out.ages.extend(c.ages)
        for s, m in c.mentions.items():
            out.mentions.setdefault(s, m)
    intros = [c.intro for c in members if c.intro is not None]
    if intros:
        out.intro = min(intros, key=lambda s: (s.scene, s.para, s.start))
    out.ages = sorted(set(out.ages))
    return out


def display(c: Character) -> str:
    spellings = [n for n in c.names if character_key(n) == c.key] or list(c.names) or [c.key]
    best = max(spellings, key=lambda n: (c.names[n], len(n)))
    return " ".join(best.split())


def aliases(c: Character) -> list[str]:
    name = display(c)
    seen = {character_key(name)}
    out: list[str] = []
    for n, _ in sorted(c.names.items(), key=lambda kv: (-kv[1], kv[0])):
        k = character_key(n)
        if k not in seen:
            seen.add(k)
            out.append(" ".join(n.split()))
    return out


def token_owners(chars: list[Character]) -> Counter:
    """How many characters use each name word (a first name shared by two is ambiguous)."""
    owners: Counter = Counter()
    for c in chars:
        toks = set()
        for n in c.names:
            toks.update(core_tokens(character_key(n)))
        owners.update(toks)
    return owners


def surfaces(names: Iterable[str], token_owner: Counter | None = None) -> set[str]:
    """Spellings that name a character in action text (CAPS and Title case).

    A name made only of common words (WOMAN, NURSE) is matched in capitals only. With
    `token_owner` (token_owners() of all characters), a first or last name no other character
    uses names this one alone too (ZACKY PRICE -> PRICE).
    """
    forms: set[str] = set()
    for n in names:
        own, toks = _name_surfaces(n)
        forms |= own
        if token_owner is not None and len(toks) >= 2:
            for t in (toks[0], toks[-1]):
                if len(t) >= 3 and token_owner[t] == 1 and not is_person_word(t):
                    forms |= _spellings(t)
    return forms


@lru_cache(maxsize=WORD_CACHE)  # one name is asked about by both passes, many times
def _name_surfaces(name: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The spellings of one name on its own, and its core tokens."""
    raw = " ".join(name.upper().split())
    key = character_key(name)
    toks = core_tokens(key)
    variants = {raw, key}
    if not is_generic(" ".join(toks)):
        variants.add(" ".join(toks))  # DR. BENNETT -> BENNETT, but OLD WOMAN is not WOMAN
    return frozenset(f for v in variants for f in _spellings(v)), tuple(toks)


def _spellings(variant: str) -> set[str]:
    """A variant as written in capitals, and in title case unless it is one common word."""
    if not variant or not any(ch.isalpha() for ch in variant):
        return set()
    if len(variant.split()) > 1 or not is_generic(variant):
        return {variant, title_case(variant)}
    return {variant}


def _scan_mentions(index: Index, chars: list[Character]) -> None:
    owner: dict[str, Character] = {}
    token_owner = token_owners(chars)
    for c in chars:
        for f in surfaces(c.names, token_owner):
            owner.setdefault(f, c)
    if not owner:
        return
    scanned = [(i, p) for i, p in enumerate(index.paragraphs) if p.kind != "dialogue"]
    # compiled only for some text to scan (never for a script of cues and lines alone), and
    # shared with pass 2 (the same spellings)
    pattern = whole_words(frozenset(owner)) if scanned else None
    for i, p in scanned:
        for m in pattern.finditer(p.text):
            if in_quotes(p.text, m.start()):  # (no scan of the text per hit)
                continue  # "GURU 12 MI." on a sign
            c = owner[m.group(0)]
            generic = is_generic(character_key(m.group(0))) and len(m.group(0).split()) == 1
            if generic and caps_neighbour(p.text, m.start(), m.end()):
                continue  # MAN inside "HEAVYSET MAN IN OVERALLS"
            age = AGE_AFTER.match(p.text, m.end())
            if age is not None:
                c.ages.append((p.scene, int(age.group("age"))))
            have = c.mentions.get(p.scene)
            if have is not None and have[2] == "action":
                continue
            c.mentions[p.scene] = (m.group(0), _sentence_at(index, i, m.start()), "action")
    for c in chars:
        c.ages = sorted(set(c.ages))


def caps_neighbour(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - WINDOW) : start].rstrip().rsplit(" ", 1)[-1:] or [""]
    after = text[end : end + WINDOW].lstrip().split(" ", 1)[:1] or [""]
    for w in (before[0], after[0]):
        w = w.strip(",.;:!?\"'()")
        if len(w) > 1 and w.isupper() and w not in DETERMINERS:
            return True
    return False


def _sentence_at(index: Index, para: int, pos: int) -> str:
    """The sentence of paragraph `para` that position `pos` is in (or the space after it),
    found by bisection: a paragraph of thousands of sentences is not scanned per name."""
    spans = index.sentence_spans(para)
    starts = index.cache.setdefault("sentence_starts", {}).get(para)
    if starts is None:
        starts = index.cache["sentence_starts"][para] = [at for at, _ in spans]
    k = bisect_right(starts, pos) - 1
    # the one before first: a sentence cut off without a space ends where the next begins
    for at, s in spans[max(0, k - 1) : k + 1]:
        if at <= pos < at + len(s) + 1:
            return s[:240]
    return index.paragraphs[para].text[:240]
