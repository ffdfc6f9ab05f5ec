"""Pass 2 of the built-in extractor: a visual description assembled from the script's own
sentences about each asset, a confidence from the amount of evidence, priority from line and
scene counts, and visual conflicts from contradictory colour / size / age words across scenes.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from stage5cli.extract.builtin.characters import (
    caps_neighbour,
    character_key,
    is_generic,
    split_joint,
    standalone_cues,
    surfaces,
)
from stage5cli.extract.builtin.lexicon import (
    APPEARANCE_NOUNS,
    APPEARANCE_WORDS,
    COLOURS,
    DETERMINERS,
    PLACE_NOUNS,
    PREPOSITIONS,
    SIZE_GROUPS,
    VISUAL_NOUNS,
    VISUAL_WORDS,
    is_person_word,
    singular,
)
from stage5cli.extract.builtin.places import place_key
from stage5cli.extract.builtin.props import noun_key, noun_like
from stage5cli.extract.builtin.text import UPPER, Index, in_quotes
from stage5cli.extract.names import AGE_AFTER, Memo, WholeWords, title_case, whole_words
from stage5cli.models import ExtractedAsset, Mention

MAX_SCRIPT_SENTENCES = 4
MAX_SENTENCE_CHARS = 260
MAX_CONTEXT_MENTIONS = 12
_WORDS = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+")
_COLOUR_FOLD = {"GREY": "GRAY", "BLOND": "BLONDE", "GOLDEN": "GOLD", "RED-HEADED": "REDHEADED"}


@dataclass(slots=True)
class Evidence:
    sentences: list[tuple[int, str]] = field(default_factory=list)  # (scene, text)
    ages: list[tuple[int, int]] = field(default_factory=list)
    scenes: set[int] = field(default_factory=set)
    intro: str = ""
    intro_next: list[str] = field(default_factory=list)  # the sentences after the introduction
    intro_prev: list[str] = field(default_factory=list)  # the sentences before it
    # sentences where the asset is the subject ("Chalf is ...", "Charya's eyes ...") or, for a
    # prop, where visual words stand right before its noun ("a large red LED clock")
    focused: set[str] = field(default_factory=set)


def _prop_surfaces(names: list[str]) -> set[str]:
    out: set[str] = set()
    for n in names:
        words = n.split()
        if not words:
            continue
        phrase = " ".join(words)
        head = words[-1].lower()
        for form in {phrase.lower(), head, singular(head), _plural(singular(head))}:
            out.update({form, form.upper(), form[:1].upper() + form[1:]})
    return {s for s in out if len(s) >= 3}


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _gather(index: Index, assets: list[ExtractedAsset]) -> list[Evidence]:
    """One pass over the action text: the sentences that name each character or prop."""
    # a place's sentences are not gathered here: every place shares one empty Evidence (never
    # written: only characters and props own forms below), not six empty containers each
    nothing = Evidence()
    evidence = [nothing if a.type == "location" else Evidence() for a in assets]
    owners: dict[str, list[int]] = defaultdict(list)
    is_char = [a.type == "character" for a in assets]
    for i, a in enumerate(assets):
        names = [a.name, *a.aliases]
        if a.type == "character":
            forms = surfaces(names)
        elif a.type == "prop":
            forms = _prop_surfaces(names)
        else:
            continue
        for f in forms:
            owners[f].append(i)
    # a trie, linear in the text, not in names (the characters' own is pass 1's mentions
    # scan), compiled only when there is action text to scan
    pattern = None
    if owners and any(p.kind == "action" for p in index.paragraphs):
        pattern = whole_words(frozenset(owners))
    for pi, para in enumerate(index.paragraphs):
        if para.kind != "action" or pattern is None:
            continue
        hits = list(pattern.finditer(para.text))
        if not hits:
            continue
        sents = index.para_sentences(pi)
        bounds = []
        pos = 0
        for s in sents:
            at = para.text.find(s, pos)
            bounds.append((at, at + len(s)))
            pos = max(pos, at)
        starts = [st for st, _ in bounds]
        per_sentence: dict[int, set[int]] = defaultdict(set)
        quoted = '"' in para.text
        others: list[int] | None = None
        for m in hits:
            text = m.group(0)
            if quoted and in_quotes(para.text, m.start()):
                continue
            ids = owners[text]
            # MAN inside "HEAVYSET MAN IN OVERALLS" (the cheap test of the name first)
            if (
                len(text.split()) == 1
                and text.isupper()
                and any(is_char[i] and is_generic(character_key(text)) for i in ids)
                and caps_neighbour(para.text, m.start(), m.end())
            ):
                continue
            si = bisect_right(starts, m.start()) - 1  # the sentence this hit starts in
            if si < 0 or m.start() >= bounds[si][1] + 1:
                continue
            sentence_start = bounds[si][0]
            thing = True  # asked only when a prop owns the form
            if not all(is_char[i] for i in ids):
                prev = para.text[max(0, m.start() - 60) : m.start()].split()[-1:] or [""]
                thing = noun_like(text.split()[-1], noun_key(text.split()[-1]), prev[0])
            for i in ids:
                if not is_char[i] and not thing:
                    continue  # "he can see": not the can
                per_sentence[si].add(i)
                if is_char[i] and others is None:
                    others = other_words(para.text)  # once per paragraph, when asked
                if is_char[i] and _is_subject(para.text, sentence_start, m.start(), m.end(),
                                              others):
                    evidence[i].focused.add(sents[si])
                elif not is_char[i] and _modified(para.text, m.start()):
                    evidence[i].focused.add(sents[si])
                if is_char[i]:
                    age = AGE_AFTER.match(para.text, m.end())
                    if age is not None:
                        evidence[i].ages.append((para.scene, int(age.group("age"))))
                    if not evidence[i].intro and text.isupper():
                        evidence[i].intro = sents[si]
                        following = list(sents[si + 1 : si + 4])
                        if len(following) < 3 and pi + 1 < len(index.paragraphs):
                            nxt_para = index.paragraphs[pi + 1]
                            if nxt_para.kind == "action" and nxt_para.scene == para.scene:
                                following += index.para_sentences(pi + 1)[: 3 - len(following)]
                        evidence[i].intro_next = following
                        evidence[i].intro_prev = list(sents[max(0, si - 2) : si])
        for si, ids in per_sentence.items():
            for i in ids:
                evidence[i].sentences.append((para.scene, sents[si]))
                evidence[i].scenes.add(para.scene)
    return evidence


_NAMING = re.compile(
    r"^(?:this|that|it|he|she)\s+(?:is|was|must be)\b|\bname is\b|\bmust be\b", re.I)
# "... will figure that this must be JACOB BILLUPS.": a sentence that ends by naming someone
_NAMED_LAST = re.compile(
    rf"\b(?:this|that|it|he|she)\s+(?:is|was|must be|has to be)\s+[{UPPER}][^\s]*"
    rf"(?:\s+[{UPPER}][^\s]*){{0,2}}[.!]?$")
_PRONOUN = re.compile(r"\b(?:he|his|him|she|her|hers|they|their|them|it|its)\b", re.I)
_PRONOUN_FAMILY = {"HE": "m", "HIS": "m", "HIM": "m", "SHE": "f", "HER": "f", "HERS": "f",
                   "THEY": "p", "THEIR": "p", "THEM": "p", "IT": "n", "ITS": "n"}


def _pronoun_followers(following: list[str], people: Names | None,
                       own_forms: set[str]) -> list[str]:
    """The sentences right after an introduction that go on about the same person by pronoun.

    "A forty-year old man named BEAMEN comes out. Friendly but a little drunk, he's the closest
    thing the town has to a mayor." / "a WOMAN emerges ... We never see her face. She stands
    with her bare back to Edward": the first pronoun family (he/she/they/it) seen is the
    person's; a sentence in another family, or one that opens with someone else's name, ends
    the run; a later name in a sentence cuts it there ("... her bare back to Edward" -> "...
    her bare back").
    """
    out: list[str] = []
    family = None
    for nxt in following:
        fams = {_PRONOUN_FAMILY[m.group(0).upper()] for m in _PRONOUN.finditer(nxt)}
        if family is None and len(fams) == 1:
            family = next(iter(fams))
        others = [m for m in people.finditer(nxt) if m.group(0) not in own_forms] if people else []
        if others and _PRONOUN.search(nxt[: others[0].start()]) is None:
            break  # the sentence is about someone else ("A man named BEAMEN greets Edward")
        if family is None:
            continue
        if family not in fams:
            if fams:
                break  # "he", "they": someone else now
            continue
        if others:
            nxt = _before_others(nxt, people, own_forms)
            if not nxt or _PRONOUN.search(nxt) is None:
                continue
        out.append(nxt)
    return out


_CLAUSE_PUNCT = re.compile(r"\s*(?:[,;]|--|—|–)\s*")
_TRAILING_JOINERS = re.compile(
    r"(?:\s*(?:[,;:]|--|—|–)|\s+(?:and|while|as|but|when|where|then|who|than|with|beside|to|at|"
    r"by|of|for|from|on|in|the|a|an|his|her|their))+\s*$")


def _before_others(sentence: str, people: Names | None, own_forms: set[str]) -> str:
    """The sentence up to the first other character's name ("a woman, not young but certainly
    younger than Billups" -> "a woman, not young but certainly younger"); "" when under three
    words are left."""
    others = [m for m in people.finditer(sentence) if m.group(0) not in own_forms] if people else []
    if not others:
        return sentence
    cut = _trim_tail(sentence[: others[0].start()])
    if len(cut.split()) < 3:
        return ""
    # the clauses after the one naming someone else go on about us: "with her bare back to
    # Edward, squeezing the water out of her golden hair" -> "..., squeezing ... hair"
    nxt = _CLAUSE_PUNCT.search(sentence, others[0].end())
    if nxt is not None:
        rest = sentence[nxt.end():]
        if rest and _PRONOUN.search(rest) and not re.match(r"(?:and|but|while|as|who)\b", rest):
            rest = _before_others(rest, people, own_forms) if people.search(rest) else rest
            if len(rest.split()) >= 2:
                cut = f"{cut}, {rest}"
    return cut


def _trim_tail(text: str) -> str:
    """A text cut before someone else's name, without the joiners left dangling at its end
    ("... certainly younger than", "comes out to greet")."""
    text = _TRAILING_JOINERS.sub("", text)
    return re.sub(r"\s+to\s+[a-z]+$", "", text)


_SUBJECT_BEFORE = frozenset("AND BUT THEN WHILE AS WHEN NOW SO".split())


_LEAD_WORDS = frozenset(("THE", "YOUNG", "OLD", "LITTLE", "A", "AN"))
_NON_SPACE = re.compile(r"\S+")
_BEFORE_WINDOW = 48  # > the longest word of _SUBJECT_BEFORE, with punctuation and a space


def other_words(text: str) -> list[int]:
    """Where each word (a run without spaces) of `text` that is not one of _LEAD_WORDS
    starts: what _is_subject asks, found once per paragraph (not once per name in it)."""
    return [m.start() for m in _NON_SPACE.finditer(text) if m.group().upper() not in _LEAD_WORDS]


def _only_lead_words(text: str, sentence_start: int, start: int, others: list[int]) -> bool:
    """Are the words of text[sentence_start:start] all _LEAD_WORDS? (`others`: other_words)"""
    if sentence_start > 0 and not text[sentence_start - 1].isspace() and sentence_start < start:
        # the slice opens inside a word of the text: its first piece is a word of its own
        m = _NON_SPACE.match(text, sentence_start)
        if m is not None:
            if text[sentence_start : min(m.end(), start)].upper() not in _LEAD_WORDS:
                return False
            sentence_start = m.end()
    i = bisect_left(others, sentence_start)
    # a word cut at `start` ends in what precedes a name (no letter): no lead word, cut or whole
    return i == len(others) or others[i] >= start


def _starts_clause(text: str, sentence_start: int, start: int) -> bool:
    """Does text[sentence_start:start] end a clause (a comma, semicolon or dash) or with a
    conjunction ("and", "then")? Only its end is read, however long the sentence."""
    window = text[max(sentence_start, start - _BEFORE_WINDOW) : start]
    if not window.strip() and start - _BEFORE_WINDOW > sentence_start:
        window = text[sentence_start:start]  # only spaces so far back: look further
    before = window.rstrip()
    lead = before.split()[-1:]  # a word cut by the window is too long to be a conjunction
    return before.endswith((",", ";", "--")) or (bool(lead) and lead[-1].upper() in _SUBJECT_BEFORE)


def _is_subject(text: str, sentence_start: int, start: int, end: int,
                others: list[int]) -> bool:
    """The name is what its sentence is about: it opens the sentence ("Young Chalf is", "The Old
    Woman"), or starts a clause and a verb follows ("In black shoes, Joe is dressed for work",
    "Kate, wearing all black, enters"), or a possessive names a feature ("Charya's eyes").
    Bounded per name (`others`: other_words of the text), however long the sentence."""
    if _only_lead_words(text, sentence_start, start, others):
        return True
    after = _WORDS.findall(text[end : end + 30])
    if _starts_clause(text, sentence_start, start) and after:
        nxt = after[0]
        if nxt.islower() and nxt.upper() not in PREPOSITIONS and nxt.upper() not in DETERMINERS:
            return True
    if text[end : end + 2] in ("'s", "’s"):
        after = _WORDS.findall(text[end + 2 : end + 40])[:2]
        return any(
            singular(w.upper()) in APPEARANCE_NOUNS or w.upper() in APPEARANCE_NOUNS for w in after
        )
    return False


def _modified(text: str, start: int) -> bool:
    """Visual words in the noun phrase before a noun: "a large red LED clock", "his gold ring"."""
    before = re.findall(r"[A-Za-z][A-Za-z'\-]*|[^\sA-Za-z]", text[max(0, start - 60) : start])
    for w in reversed(before):
        up = w.upper()
        if not w[0].isalpha() or up in DETERMINERS or up in PREPOSITIONS or up.endswith("'S"):
            return False
        if up in VISUAL_WORDS and up not in VISUAL_NOUNS:
            return True
    return False


_PEOPLE_WORDS = frozenset("HE SHE THEY HIM HER HIS HERS THEIR THEM".split())


def _visual_score(sentence: str) -> int:
    words = [w.upper() for w in _WORDS.findall(sentence)]
    score = sum(1 for w in words if w in VISUAL_WORDS)
    if re.search(r"\b\d{1,2}'?s?\b|\(\d{1,2}\)", sentence):
        score += 1
    return score


_LOOK_LEADS = frozenset("HIS HER THEIR ITS A AN IN WITH WEARING".split())
_CLAUSE_END = frozenset("AND BUT WITH OR".split())


def _look_score(sentence: str) -> int:
    """How much a sentence says about what a person looks like.

    Clothing and body words count after "his / her / a / in / with / wearing" ("in a blue
    coat", "with braces"); look adjectives count before such a word or a person word ("a giant
    man") or standing as a predicate ("40's and handsome,"); colours only before such a word.
    """
    if sentence.isupper():
        return 0  # a shot line: KARL THE GIANT
    tokens = re.findall(r"[A-Za-z][A-Za-z'\-]*|\d+|[^\sA-Za-z\d]", sentence)
    words = [t.upper() for t in tokens]
    score = 0

    def wearable(w: str) -> bool:
        return w in APPEARANCE_NOUNS or singular(w) in APPEARANCE_NOUNS

    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else "."
        nxt2 = words[i + 2] if i + 2 < len(words) else "."
        if wearable(w) and any(p in _LOOK_LEADS for p in words[max(0, i - 3) : i]):
            score += 1
        elif w in ("WEARING", "WEARS", "WORE", "DRESSED", "CLAD"):
            score += 1
        elif w in ("LOOKS", "LOOKED") and nxt == "LIKE":
            score += 1  # "She looks like she's been dead for years"
        elif w in COLOURS and is_person_word(nxt):
            score += 1  # "a black boy of eight", "the town's first Black physician"
        elif w in APPEARANCE_WORDS or w in COLOURS:
            prev = words[i - 1] if i else "."
            person_after = w not in COLOURS and is_person_word(nxt) and prev in ("A", "AN", ",")
            if wearable(nxt) or wearable(nxt2) or person_after:
                score += 1
            elif w not in COLOURS and (not nxt[:1].isalpha() or nxt in _CLAUSE_END):
                score += 1
    if _AGE_MARK.search(sentence):
        score += 1
    return score


# Does a sentence state an age anywhere ("BRICK, 40s,", "EDWARD BLOOM, 40's and handsome",
# "WILL, now 17 with", "Will (29)", "AGE 3")? A looser search than names.AGE_AFTER (the age
# written right after a name): it only scores how much a sentence describes someone.
_AGE_MARK = re.compile(
    r",\s*(?:now\s+|about\s+|also\s+)?\d{1,2}(?:'?s)?(?=\s*(?:,|\.|\)|and\b|with\b|is\b|in\b))"
    r"|\(\d{1,2}\)|\bage \d",
    re.IGNORECASE,
)


def _place_score(sentence: str) -> int:
    """How much a sentence says about what a place looks like (0 when it is about people)."""
    words = [w.upper() for w in _WORDS.findall(sentence)]
    if any(w in _PEOPLE_WORDS for w in words):
        return 0
    places = sum(1 for w in words if w in PLACE_NOUNS or singular(w) in PLACE_NOUNS)
    looks = sum(1 for w in words if w in VISUAL_WORDS and w not in VISUAL_NOUNS)
    return places + looks if places and (looks or places >= 2) else 0


def _tidy(sentence: str) -> str:
    s = " ".join(sentence.split()).strip()
    s = s.rstrip(":;,-– ")
    if len(s) > MAX_SENTENCE_CHARS:
        cut = s.rfind(",", 0, MAX_SENTENCE_CHARS)
        s = s[: cut if cut > 80 else MAX_SENTENCE_CHARS].rstrip(" ,;")
    if s and s[-1] not in ".!?\"'":
        s += "."
    return s[:1].upper() + s[1:]


def _pick(candidates: list[tuple[int, str, int]], first: str = "") -> list[str]:
    """Up to MAX_SCRIPT_SENTENCES sentences, the best-scored ones, in script order."""
    chosen: list[tuple[int, str]] = []
    seen: set[str] = set()
    if first:
        chosen.append((-1, first))
        seen.add(first)
    ranked = sorted(
        (c for c in candidates if c[2] > 0 and c[1] not in seen), key=lambda c: (-c[2], c[0])
    )
    for scene, text, _ in ranked:
        if len(chosen) >= MAX_SCRIPT_SENTENCES:
            break
        if text in seen:
            continue
        seen.add(text)
        chosen.append((scene, text))
    chosen.sort(key=lambda c: c[0])
    return [_tidy(t) for _, t in chosen]


_TIMES_OF_DAY = ("DAY", "NIGHT", "DAWN", "DUSK", "MORNING", "EVENING", "AFTERNOON", "SUNSET",
                 "SUNRISE", "TWILIGHT", "MAGIC HOUR", "PRE-DAWN")
_SETTING_KINDS = {
    "INT": "an interior",
    "EXT": "an exterior",
    "INT/EXT": "an interior and exterior",
    "EST": "an establishing exterior",
}


def _times_of_day(time_of_day: str) -> tuple[str, ...]:
    """The times of day a heading names ("NIGHT - LATER" -> ("night",), "DAY/NIGHT" -> ("day",
    "night"))."""
    times = []
    for t in time_of_day.replace("/", "-").split("-"):
        t = t.strip().upper()
        t_words = t.split()
        for core in _TIMES_OF_DAY:
            if core in t_words or t == core:
                times.append(core.lower())
                break
    return tuple(times)


class _Settings:
    """The sentence from the headings of a place's scenes (interior/exterior and the times of
    day it is seen at). A heading's time of day is read once per distinct string, and the
    sentence is made once per distinct sequence of headings' facts: on a long script most
    places are seen in one scene, and thousands of them share the same "INT ... NIGHT"
    sentence."""

    def __init__(self, index: Index) -> None:
        self._by_number = index.scene_by_number
        self._times: dict[str, tuple[str, ...]] = {}
        self._sentences: dict[tuple, str] = {}

    def sentence(self, scenes: list[int]) -> str:
        facts = []
        for n in scenes:
            s = self._by_number.get(n)
            if s is None:
                continue
            time_of_day = s.time_of_day or ""
            times = self._times.get(time_of_day)
            if times is None:
                times = self._times[time_of_day] = _times_of_day(time_of_day)
            facts.append((s.int_ext or "", times))
        key = tuple(facts)  # the sentence depends on the facts' order (ties keep first seen)
        text = self._sentences.get(key)
        if text is None:
            text = self._sentences[key] = _setting(facts)
        return text


def _setting(facts: list[tuple[str, tuple[str, ...]]]) -> str:
    """A sentence from the headings' facts, in scene order: (interior/exterior or "", the times
    of day named): what kind of place it is and the times of day it is seen at."""
    ie: Counter = Counter()
    times: Counter = Counter()
    for int_ext, cores in facts:
        if int_ext:
            ie[int_ext] += 1
        for core in cores:
            times[core] += 1
    parts = [_SETTING_KINDS[k] for k, _ in ie.most_common() if k in _SETTING_KINDS]
    if not parts and not times:
        return ""
    what = " and ".join(dict.fromkeys(parts)) or "a place"
    when = ""
    if times:
        names = [f"by {t}" if t == "day" else f"at {t}" for t, _ in times.most_common(3)]
        when = ", seen " + (" and ".join(names) if len(names) <= 2 else ", ".join(names))
    return _tidy(f"{what[:1].upper()}{what[1:]}{when}")


def _generic(asset: ExtractedAsset, style_name: str | None) -> list[str]:
    """What is said when the script says nothing: the name alone ("A kitchen."), never words
    about the script, the style or the rendering (they would go straight into the image prompt).
    `style_name` is accepted for the signature's sake and deliberately unused."""
    del style_name
    if asset.type == "prop":
        name = asset.name.lower() if asset.name.isupper() else asset.name
        last = name.split()[-1] if name.split() else name
        if singular(last) != last:  # "truck keys", "vinyl records": no article
            return [_tidy(name)]
        article = "An" if name[:1].lower() in "aeiou" else "A"
        return [_tidy(f"{article} {name}")]
    return [_tidy(title_case(asset.name))]


MAX_DESCRIPTION_WORDS = 80
_CLAUSE_BOUNDARY = re.compile(r"\s*(?:[,;:]|--|—|–|\b(?:and|while|as|but|when|where|then|who)\b)\s*")


_LEAD_OK = re.compile(r"^(?:(?:the|a|an|young|old|little|his|her|their)\s+)*[\w'’\-]*$"
                      r"|^(?:a|an|the)\s[^,;]*\b(?:named|called)$", re.I)  # "A tall man named"
_NAME_LIST_GAP = re.compile(r"^\s*(?:,\s*(?:and\s+)?|and\s+|&\s*)$")


def _own_clauses(sentence: str, own: WholeWords | None, people: Names | None,
                 own_forms: set[str]) -> str:
    """The part of a sentence about its asset: clauses are cut at another character's name
    ("EDWARD, 40s, stands beside WILL, 17" -> "EDWARD, 40s, stands beside"). The run of clauses
    around the asset's own name that names nobody else is kept; "" when nothing is left."""
    if people is None:
        return sentence
    # hits in text order, none overlapping another of the same search: a name's own span is
    # the last of its that starts at or before it (a bisection, not a scan per name)
    others = [m.span() for m in people.finditer(sentence) if m.group(0) not in own_forms]
    mine = [m.span() for m in own.finditer(sentence)] if own is not None else []
    if mine and others:
        starts = [a for a, _ in mine]

        def in_mine(pos: int) -> bool:
            k = bisect_right(starts, pos) - 1
            return k >= 0 and pos < mine[k][1]

        others = [o for o in others if not in_mine(o[0])]
    if not others:
        return sentence
    if not mine:
        return ""
    cuts = [0] + [m.start() for m in _CLAUSE_BOUNDARY.finditer(sentence)] + [len(sentence)]
    cuts = sorted(set(cuts))
    clauses = list(zip(cuts, cuts[1:], strict=False))

    # a list of names that share the rest of the sentence ("CHALF, NAR and YOR, each 15, in
    # robes"): the listed names are one subject, not neighbours. Only the nearest other name
    # on either side can be listed with ours (a gap holding a name is no list gap), so the list
    # grows one neighbour at a time, right and left.
    lo_i, hi_i = mine[0]
    right = bisect_left([o[0] for o in others], hi_i)  # the first other after ours
    left = right - 1
    listed: set[int] = set()
    changed = True
    while changed:
        changed = False
        if right < len(others) and _NAME_LIST_GAP.match(sentence[hi_i : others[right][0]]):
            listed.add(right)
            hi_i = max(hi_i, others[right][1])
            right += 1
            changed = True
        if left >= 0 and _NAME_LIST_GAP.match(sentence[others[left][1] : lo_i]):
            listed.add(left)
            lo_i = min(lo_i, others[left][0])
            left -= 1
            changed = True
    if listed:
        others = [o for i, o in enumerate(others) if i not in listed]
    if (lo_i, hi_i) != mine[0]:
        # the other listed names go; the list's shared description stays ("NAR, each 15, ...")
        shared = sentence[:lo_i] + sentence[mine[0][0] : mine[0][1]] + sentence[hi_i:]
        return _own_clauses(shared, own, people, own_forms)
    me = mine[0][0]
    at = next(i for i, c in enumerate(clauses) if c[0] <= me < c[1])
    before = [o for o in others if o[0] < me]
    after = [o for o in others if o[0] > me]
    # start: the own clause (or the name itself when another name opens that clause); earlier
    # clauses only when nobody else is named before us (they describe us: "Tall, in a grey
    # suit, EDWARD enters")
    if before:
        start = me
        # keep the noun phrase whole: "lifts an old brass LANTERN" -> "an old brass LANTERN"
        lead = re.search(r"\b(?:a|an|the|his|her|their|its|this|that)\s+(?:[\w'’\-]+\s+){0,3}$",
                         sentence[before[-1][1] : me], re.IGNORECASE)
        if lead is not None:
            start = before[-1][1] + lead.start()
    else:
        start = 0
    end = len(sentence)
    if after:
        nxt = after[0][0]
        k = next(i for i, c in enumerate(clauses) if c[0] <= nxt < c[1])
        end = clauses[k][0] if k > at else nxt
        if k == at and start != me and not sentence[start:me].strip(" ,;:-—–").istitle():
            # the other name is in our own clause and we do not open it ("Sitting beside
            # Josephine, Will spots..."): no clause of ours to keep
            lead = sentence[start:me].strip()
            if lead and not _LEAD_OK.match(lead):
                return ""
    text = sentence[start:end].strip()
    text = re.sub(r"^(?:[,;:]|--|—|–|and|while|as|but|when|where|then|who)\s+", "", text)
    # cut at someone else ("comes out to greet [Edward]" -> "comes out"), or joiners at the end
    text = _trim_tail(text) if end < len(sentence) else _TRAILING_JOINERS.sub("", text)
    return text if len(text.split()) >= 2 else ""


def _bounded(sentences: list[str], limit: int = MAX_DESCRIPTION_WORDS) -> list[str]:
    """Whole sentences while they fit in `limit` words; a first sentence that is longer is cut
    at its last comma inside the limit."""
    out: list[str] = []
    used = 0
    for s in sentences:
        n = len(s.split())
        if used + n <= limit:
            out.append(s)
            used += n
            continue
        if not out:
            words = s.split()[:limit]
            cut = " ".join(words)
            at = cut.rfind(",")
            out.append(_tidy(cut[:at] if at > len(cut) // 2 else cut))
        break
    return out


class _Remembered:
    """A WholeWords whose hits are kept per text, for one describe_all: the same sentence is
    searched for people once per character it could be about (one's introduction is the
    sentence after the one before it), and the hits depend on the text alone."""

    def __init__(self, words: WholeWords):
        self._words = words
        self._hits: dict[str, list] = {}

    def __bool__(self) -> bool:
        return bool(self._words)

    def finditer(self, text: str) -> list:
        got = self._hits.get(text)
        if got is None:
            got = self._hits[text] = list(self._words.finditer(text))
        return got

    def search(self, text: str):
        hits = self.finditer(text)
        return hits[0] if hits else None  # the leftmost, as a search finds


Names = WholeWords | _Remembered  # what the sentence cutters search for other people


def _name_pattern(forms: set[str], shared: bool = False) -> WholeWords | None:
    """The forms (two characters or more) as whole words, or None. Not a regex compiled per
    asset: on a script with thousands of characters the compiling was most of pass 2, and an
    alternation of every character's names was quadratic (WholeWords uses a trie for many).
    `shared`: every character's spellings, built once for this and _sentences_naming."""
    forms = {f for f in forms if len(f) >= 2}
    if not forms:
        return None
    return whole_words(frozenset(forms)) if shared else WholeWords(forms)


def _conflicts(asset: ExtractedAsset, ev: Evidence) -> list[str]:
    if not ev.ages and not ev.sentences:
        return []  # nothing to compare (every place: its sentences are not gathered)
    details: list[str] = []
    ages = sorted(ev.ages, key=lambda a: (a[0], a[1]))
    if asset.type == "character" and ages:
        first: dict[int, int] = {}
        for scene, age in ages:
            first.setdefault(age, scene)
        values = sorted(first.items(), key=lambda kv: kv[1])
        if max(first) - min(first) >= 10:
            shown = " vs ".join(f"{age} (scene {scene})" for age, scene in values[:4])
            details.append(f"age: {shown}")
    attrs: dict[str, dict[str, int]] = defaultdict(dict)  # noun -> value -> first scene
    head = asset.name.split()[-1].upper() if asset.type == "prop" else ""
    for scene, text in sorted(ev.sentences):
        if text not in ev.focused and text != ev.intro:
            continue
        words = [w.upper() for w in _WORDS.findall(text)]
        for i, w in enumerate(words):
            colour = _COLOUR_FOLD.get(w, w) if w in COLOURS else None
            size = SIZE_GROUPS.get(w)
            if colour is None and size is None:
                continue
            for n in words[i + 1 : i + 3]:
                noun = singular(n)
                target = noun if noun in VISUAL_NOUNS or n in VISUAL_NOUNS else None
                if asset.type == "prop" and singular(n) == singular(head):
                    target = singular(head)
                if target is None:
                    continue
                kind = "colour" if colour else "size"
                value = (colour or size or "").lower()
                attrs[f"{target.lower()}|{kind}"].setdefault(value, scene)
                break
    for key, values in sorted(attrs.items()):
        if len(values) < 2 or len(set(values.values())) < 2:
            continue
        noun = key.split("|")[0]
        ordered = sorted(values.items(), key=lambda kv: kv[1])
        shown = " vs ".join(f"{v} (scene {s})" for v, s in ordered[:4])
        details.append(f"{noun}: {shown}")
    return details


def _cue_lines(index: Index) -> Counter:
    lines: Counter = Counter()
    alone = standalone_cues(index.cues)
    for name, n in Counter(cue.name for cue in index.cues).items():  # each spelling once
        for part in split_joint(name, alone):
            lines[character_key(part)] += n
    return lines


def describe_all(
    index: Index,
    assets: list[ExtractedAsset],
    style_name: str | None = None,
    character_names: list[str] | None = None,
    *,
    hand_over: bool = False,
) -> list[ExtractedAsset]:
    """Pass 2 for every asset at once (one scan of the text); returns new assets.

    `character_names` (all names and aliases of the script's characters) keeps sentences about
    people out of location descriptions; found from the script when not given. With
    `hand_over` the caller gives `assets` up: each is replaced in that list by its described
    asset as soon as it is made (and its evidence dropped), so the two sets never coexist in
    memory (240,000 of each on a script of distinct headings); the list is returned.
    """
    evidence = _gather(index, assets)
    n_scenes = max(1, len(index.heading_scenes))
    lines = _cue_lines(index)
    max_lines = max(lines.values(), default=0)
    # a place's key is asked for its headings' locations and again for its names (the same
    # strings, mostly): each distinct string is keyed once
    key_of = Memo(place_key).__getitem__

    location_scenes: dict[str, set[int]] = defaultdict(set)
    headings = {}
    for s in index.sp.scenes:
        if s.number > 0 and not s.forced and s.location:
            location_scenes[key_of(s.location)].add(s.number)
            headings[s.number] = s
    openings = _openings(index)
    with_characters: set[str] = set()
    if character_names is None:
        from stage5cli.extract.builtin.characters import find_characters

        character_names = [n for c in find_characters(index)[0] for n in c.names]
    people_forms = surfaces(character_names)
    shared = _name_pattern(people_forms, shared=True)
    people = _Remembered(shared) if shared is not None else None
    if any(a.type == "location" for a in assets):
        with_characters = _sentences_naming(openings, people_forms)
    settings = _Settings(index)
    place_scores: dict[str, int] = {}  # many scenes open with the same sentence ("He waits.")
    out: list[ExtractedAsset] = []
    for i, (asset, ev) in enumerate(zip(assets, evidence, strict=True)):
        names = [asset.name, *asset.aliases]
        scenes = {m.scene_number for m in asset.mentions} | ev.scenes
        extra = dict(asset.extra)
        if asset.type == "character":
            n_lines = sum(lines.get(k, 0) for k in {character_key(n) for n in names})
            own_forms: set[str] = set()
            own = None
            if ev.focused or ev.intro:  # the own spellings only cut sentences about the asset
                own_forms = surfaces(names)
                own = _name_pattern(own_forms)
            cands = []
            for sc, t in ev.sentences:
                if t in ev.focused and t != ev.intro:
                    t = _own_clauses(t, own, people, own_forms)
                    cands.append((sc, t, _look_score(t) if t else 0))
            intro = _own_clauses(ev.intro, own, people, own_forms) if ev.intro else ""
            # "PING (27) at a microphone. She is as gorgeous a woman as you'll ever see."
            for nxt in _pronoun_followers(ev.intro_next if intro else [], people, own_forms):
                if _look_score(nxt) > 0 or any(
                    w.upper() in APPEARANCE_WORDS for w in _WORDS.findall(nxt)
                ):
                    cands.append((-1, nxt, 99))
            # "...a man in his forties in an expensive suit. This is SPALDING JEAGER."
            if intro and (_NAMING.search(intro) and len(intro.split()) <= 12
                          or _NAMED_LAST.search(intro)):
                for prev in ev.intro_prev:
                    if _look_score(prev) > 0 or any(
                        w.upper() in APPEARANCE_WORDS for w in _WORDS.findall(prev)
                    ):
                        prev = _own_clauses(prev, own, people, own_forms) if own and own.search(
                            prev) else _before_others(prev, people, own_forms)
                        if prev:
                            cands.append((-2, prev, 98))
            script = _pick(cands, intro)
            is_priority = n_lines >= max(5, 0.08 * max_lines) or len(scenes) >= max(
                3, 0.08 * n_scenes
            )
            evidence_count = len(scenes) + len(script) + min(n_lines, 30) / 3
            extra["lines"] = n_lines
        elif asset.type == "location":
            for k in {key_of(n) for n in names}:
                scenes.update(location_scenes.get(k, ()))
            in_order = sorted(scenes)
            # only the opening sentences of each scene describe the place
            cands = []
            for n in in_order:
                for text in openings.get(n, []):
                    if text not in with_characters:
                        score = place_scores.get(text)
                        if score is None:
                            score = place_scores[text] = _place_score(text)
                        cands.append((n, text, score))
            script = _pick(cands)
            setting = settings.sentence(in_order)
            if setting:
                script = script[: MAX_SCRIPT_SENTENCES - 1] + [setting]
            is_priority = len(scenes) >= 2 and len(scenes) >= 0.025 * n_scenes
            evidence_count = len(scenes) + len(script)
        else:
            own_forms = set()
            own = None
            if ev.focused:  # as for a character: only its focused sentences are cut
                own_forms = _prop_surfaces(names)
                own = _name_pattern(own_forms)
            cands = []
            for sc, t in ev.sentences:
                if t in ev.focused:
                    t = _own_clauses(t, own, people, own_forms)
                    cands.append((sc, t, _visual_score(t) if t else 0))
            script = _pick(cands)
            handled = int(extra.get("handled_scenes", 0))
            is_priority = handled >= 2 or len(scenes) >= max(3, 0.03 * n_scenes)
            evidence_count = len(scenes) + len(script) + handled
        script = _bounded([t for t in script if t])
        extra["scenes"] = len(scenes)
        extra["description_source"] = "script" if script else "name"
        if not script:
            evidence_count = min(evidence_count, 1)
        details = _conflicts(asset, ev)
        mentions = asset.mentions
        if not mentions and scenes:
            mentions = _mentions_from(ev, scenes, headings)
        # built once, not copied from the input and then set field by field (six pydantic
        # setattrs); the plain constructor, validated in pydantic-core, is also quicker than
        # model_construct's Python loop over the fields
        described = ExtractedAsset(
            name=asset.name,
            type=asset.type,
            aliases=asset.aliases,
            mentions=mentions,
            description=" ".join(script) if script else " ".join(_generic(asset, style_name)),
            confidence_score=round(min(0.99, 1 - 0.75**evidence_count), 2),
            is_priority=is_priority,
            has_conflicts=bool(details),
            conflict_details="; ".join(details),
            extra=extra,
        )
        if hand_over:
            assets[i], evidence[i] = described, None
        else:
            out.append(described)
    return assets if hand_over else out


def _sentences_naming(openings: dict[int, list[str]], forms: set[str]) -> set[str]:
    """The opening sentences that name any of the forms as a whole word.

    WholeWords, not a plain alternation of every form: compiling 30,000 alternatives took re
    a quarter of a second; and the very one `people` built whenever no form is a single
    character (names.whole_words keeps it).
    """
    if not forms:
        return set()
    pattern = whole_words(frozenset(forms))
    return {t for texts in openings.values() for t in texts if pattern.search(t)}


def _openings(index: Index) -> dict[int, list[str]]:
    """The first sentences (up to three) of the first action paragraph of every scene."""
    firsts: dict[int, list[str]] = {}
    for pi, para in enumerate(index.paragraphs):
        if para.kind == "action" and para.scene not in firsts:
            firsts[para.scene] = index.para_sentences(pi)[:3]
    return firsts


def _mentions_from(ev: Evidence, scenes: set[int], headings: dict) -> list[Mention]:
    by_scene: dict[int, str] = {}
    for scene, text in ev.sentences:
        by_scene.setdefault(scene, text)
    out = []
    for n in sorted(scenes):
        context = by_scene.get(n) or (
            " ".join(headings[n].heading.split()) if n in headings else ""
        )
        out.append(Mention(scene_number=n, text="", context=context[:240]))
    return bound_mentions(out)


def bound_mentions(mentions: list[Mention]) -> list[Mention]:
    """All scenes kept; a context quote on the first MAX_CONTEXT_MENTIONS only."""
    out = []
    for i, m in enumerate(sorted(mentions, key=lambda m: m.scene_number)):
        if i >= MAX_CONTEXT_MENTIONS and m.context:
            m = replace(m, context="")
        out.append(m)
    return out
