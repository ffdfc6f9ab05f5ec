"""The parsed script read once for the built-in extractor: clean paragraphs, sentences, words,
capitalised spans and dialogue cues, per scene.

Everything later (characters, locations, props, descriptions) reads this index, so a 120-page
script is tokenised exactly once.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from dataclasses import dataclass, field

from stage5cli.extract.names import AGE_AFTER
from stage5cli.screenplay.model import Screenplay

from .lexicon import (
    ADJECTIVE_ENDINGS,
    COLOURS,
    DETERMINERS,
    GROUP_WORDS,
    LABELLED,
    MATERIALS,
    OBJECT_NOUNS,
    SIZES,
    SOUND_CONTEXT,
)


def _upper_class() -> str:
    """A regex character class body of every uppercase letter of the Basic Multilingual Plane
    (A-Z, É, Ë, Ñ, Ø, Ł, Ö, Σ, Д ...), built from the Unicode database, not a hand list."""
    ranges: list[tuple[int, int]] = []
    for c in range(0x10000):
        if chr(c).isupper():
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1] = (ranges[-1][0], c)
            else:
                ranges.append((c, c))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                   for a, b in ranges)


UPPER = _upper_class()
# how much text either side of a capitalised span its rules look at (keeps every span O(1))
WINDOW = 200
_EMPHASIS = re.compile(r"(?<!\\)(\*{1,3}|_)")
_ESCAPE = re.compile(r"\\(.)")
_SPACES = re.compile(r"\s+")
_TWO_CAPS = re.compile(rf"[{UPPER}][{UPPER}'.\-]*[{UPPER}]")
# a sentence ends at . ! ? (optionally closed by a quote or bracket) followed by a capital
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[{UPPER}0-9])".replace("{UPPER}", UPPER))
_ABBREVIATIONS = ("DR.", "MR.", "MRS.", "MS.", "ST.", "JR.", "SR.", "VS.", "MT.", "NO.", "DR", "MR")
_WORD = re.compile(r"[^\W_][\w'’°&.\-]*")  # any letter or digit (Unicode), not only ASCII
_APPOSITIVE_AFTER = re.compile(r"^\s*,\s*(?:a|an|the|his|her|their|our|my|retired|former|now)\b")
_INTRO_BEFORE = re.compile(
    r"(?:\bthis is|\bnamed|\bname is|\bcalled|\bmust be|\bit'?s|\bmeet)\s*$", re.IGNORECASE
)
_LOWER_AFTER = re.compile(r"\s+([a-z][a-z\-]+)")
_GAP_BREAK = re.compile(r'[,;:!?"()\[\]]|--')  # what ends a run of capitalised words
_INTRO_TAIL = 24  # > the longest phrase of _INTRO_BEFORE ("name is") and the \b before it
_CAPS_JOINERS = {"OF", "THE", "TO", "AND", "IN", "ON", "&", "A", "AN", "AT", "FOR", "WITH"}


def clean(text: str) -> str:
    """Plain text of a Fountain element: emphasis markers and escapes gone, spaces collapsed."""
    if not text:
        return ""
    if (text.isprintable() and "  " not in text and "*" not in text and "_" not in text
            and "\\" not in text):
        # nothing to cut or collapse (every space but " " is unprintable): most paragraphs
        return text.replace("’", "'").strip()
    text = _EMPHASIS.sub("", text)
    text = _ESCAPE.sub(r"\1", text)
    return _SPACES.sub(" ", text.replace("’", "'")).strip()


_QUOTES: dict[int, tuple[str, list[int]]] = {}  # id(text) -> (text, its quote positions)
_QUOTES_LOCK = threading.Lock()


def _quote_positions(text: str) -> list[int]:
    """Where the double quotes of `text` are, kept for the last few texts asked about, by
    identity: a cache keyed by the string itself compared an equal paragraph of a second
    extraction in the same process (a batch worker, `serve`) in full on every call. The entry
    holds the text, so its id cannot be reused while it is kept."""
    got = _QUOTES.get(id(text))
    if got is not None and got[0] is text:
        return got[1]
    out: list[int] = []
    i = text.find('"')
    while i >= 0:
        out.append(i)
        i = text.find('"', i + 1)
    with _QUOTES_LOCK:
        while len(_QUOTES) >= 8:
            del _QUOTES[next(iter(_QUOTES))]
        _QUOTES[id(text)] = (text, out)
    return out


def in_quotes(text: str, pos: int) -> bool:
    """Is this position inside a double-quoted passage (a sign, a title, a quoted word)?

    Quote positions are found once per text (a bisection per call; no scan of the text per
    call, not even for its first quote), so asking about every span of a very long paragraph
    stays linear."""
    quotes = _quote_positions(text)
    return bool(quotes) and bisect_left(quotes, pos) % 2 == 1


# A sentence longer than this is read as pieces of at most this many characters, each cut at a
# clause boundary (else a space): the passes look at each sentence once per asset it names, so
# a paragraph that never ends a sentence (thousands of names in it) would cost its length once
# per name. The screenplays of the corpus have none over 300 characters.
MAX_SENTENCE = 400
_PIECE_CUT = re.compile(r"[.!?,;:]\s|\s(?:--|—|–)\s")


def _abbreviation(text: str) -> bool:
    """Does `text` end with an abbreviation whose stop ends no sentence (DR., J.)?"""
    last = text.rstrip("\"')] ").split(" ")[-1].upper()
    return last in _ABBREVIATIONS or (len(last) == 2 and last.endswith("."))


def _pieces(sentence: str, limit: int = MAX_SENTENCE) -> list[str]:
    """`sentence` cut into pieces of at most `limit` characters: after the last clause
    punctuation in the second half of the window, else at its last space, else anywhere
    (positions, not a copy of the rest per piece)."""
    out: list[str] = []
    i, n = 0, len(sentence)
    while n - i > limit:
        stop = i + limit + 1  # the window: sentence[i:stop]
        # the strongest boundary last in the window's second half: a stop the sentence rules
        # did not end on ("waits. then ..."), a semicolon, colon or dash, a comma, a space
        best = [-1, -1, -1]
        for m in _PIECE_CUT.finditer(sentence, i + limit // 2, stop):
            at, mark = m.start(), m.group()[0]
            if mark.isspace():  # " -- ": the dash opens the next piece
                best[1] = at
            elif mark == ",":
                best[2] = at + 1
            elif mark in ";:":
                best[1] = at + 1
            elif not _abbreviation(sentence[max(i, at - 8) : at + 1]):  # not "Dr. | Smith"
                best[0] = at + 1
        cut = next((c for c in best if c >= 0), sentence.rfind(" ", i, stop))
        if cut <= i:
            cut = i + limit
        piece = sentence[i:cut].strip()
        if piece:
            out.append(piece)
        i = cut
        while i < n and sentence[i].isspace():
            i += 1
    rest = sentence[i:].strip()
    if rest:
        out.append(rest)
    return out


def sentences(text: str) -> list[str]:
    """Sentences of a cleaned paragraph (abbreviations such as DR. do not end one); one longer
    than MAX_SENTENCE characters comes as pieces (_pieces)."""
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if _abbreviation(text[max(start, m.start() - 40) : m.start()]):
            continue
        piece = text[start : m.end(1)].strip()  # a closing quote stays with its sentence
        if piece:
            out.extend(_pieces(piece) if len(piece) > MAX_SENTENCE else (piece,))
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.extend(_pieces(tail) if len(tail) > MAX_SENTENCE else (tail,))
    return out


def is_caps_word(word: str) -> bool:
    """An all-capitals word (a possessive 's may follow): BRICK, DR., LA, 4TH, STEYR-AUG, BAXTER's."""
    core = word[:-2] if word.endswith(("'s", "’s")) else word
    return core.isupper()


def _adjective_like(word: str) -> bool:
    return word.isalpha() and (word in MATERIALS or word in COLOURS or word in SIZES or (
        len(word) > 4 and word.endswith(ADJECTIVE_ENDINGS)))


@dataclass(slots=True)
class CapsSpan:
    """A run of capitalised words in an action paragraph: "a CUTE DOG", "KARL THE GIANT"."""

    words: list[str]  # as written, trailing punctuation removed (possessive 's kept)
    scene: int
    para: int  # index into Index.paragraphs
    start: int  # character offsets in the paragraph text
    end: int
    source: str = field(repr=False)  # the paragraph text (shared, never copied per span)
    standalone: bool = False  # the whole paragraph is capitals (a shot line: ON WILL AND SANDRA)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def before(self) -> str:
        """The paragraph text before the span (its last WINDOW characters)."""
        return self.source[max(0, self.start - WINDOW) : self.start]

    @property
    def after(self) -> str:
        """The paragraph text after the span (its first WINDOW characters)."""
        return self.source[self.end : self.end + WINDOW]

    def det_before(self) -> bool:
        """A determiner or possessive right before the span (up to one lower-case word between)."""
        prev = self.before.rstrip().rsplit(" ", 2)[-2:]
        prev = [p.strip(",;:\"'(").upper() for p in prev if p]
        if not prev:
            return False
        last = prev[-1]
        if last in DETERMINERS or last.endswith(("'S", "S'")):
            return True
        return len(prev) == 2 and prev[0] in DETERMINERS and not is_caps_word(prev[1])

    def det_near(self) -> bool:
        """A determiner or possessive before the span with, between them, only adjective-like
        words ("a long brass LIGHTER", "her dented RED THERMOS") or a container and "of"
        ("a wagon of SMUDGE POTS"); never in a sound context ("the noise of the ENGINES")."""
        words = [w.strip(",;:\"'(").upper() for w in self.before.rsplit(None, 5)[-5:]]
        if not words or self.after.lstrip().startswith("!"):
            return False
        if not SOUND_CONTEXT.isdisjoint(words):
            return False
        tail = words[-3:]
        for i in range(len(tail) - 1, -1, -1):
            w = tail[i]
            if w in DETERMINERS or (w.endswith(("'S", "S'")) and i == len(tail) - 1):
                between = tail[i + 1:]
                if all(_adjective_like(x) for x in between):
                    return True
                return (len(between) == 2 and between[1] == "OF" and between[0].isalpha()
                        and between[0] not in GROUP_WORDS)  # not "a troupe of FIREBREATHERS"
        return False

    def modifies_next(self) -> bool:
        """The span labels the lower-case thing after it ("a red LED clock", "the ACTIVATE
        button"): the thing is the object, the capitals are not."""
        m = _LOWER_AFTER.match(self.after)
        return bool(m) and (m.group(1).upper() in OBJECT_NOUNS or m.group(1).upper() in LABELLED)

    def age_after(self) -> int | None:
        m = AGE_AFTER.match(self.after)
        return int(m.group("age")) if m else None

    def appositive_after(self) -> bool:
        return bool(_APPOSITIVE_AFTER.match(self.after))

    def intro_before(self) -> bool:
        # the phrase ends the text: its last few characters (with the one before) are enough
        return bool(_INTRO_BEFORE.search(self.before.rstrip()[-_INTRO_TAIL:]))


@dataclass(slots=True)
class Paragraph:
    scene: int
    kind: str  # "action" or "forced_heading" or "dialogue"
    text: str
    speaker: str = ""  # for dialogue: the cue name


@dataclass(slots=True)
class Cue:
    name: str  # upper case, extensions removed
    extensions: list[str]
    scene: int
    line: str  # the first line of what is said, cleaned


@dataclass
class Index:
    sp: Screenplay
    title: str
    scene_numbers: list[int]
    paragraphs: list[Paragraph] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    caps: list[CapsSpan] = field(default_factory=list)
    # paragraph index -> sentences (action and dialogue)
    _sentences: dict[int, list[str]] = field(default_factory=dict)
    _spans: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    _by_number: dict | None = None
    cache: dict = field(default_factory=dict)  # per-index memo for the passes (keyed by name)
    # kind -> candidates pass 1 left out by the cap of one kind (most_seen below)
    left_out: dict[str, int] = field(default_factory=dict)
    max_assets: int | None = None  # of each kind (None: MAX_ASSETS_PER_KIND)

    def most_seen(self, kind: str, items: list, scenes) -> list:
        """store.extracted.keep_most_seen, counting what it leaves out in `left_out`."""
        from stage5cli.store.extracted import keep_most_seen

        kept = keep_most_seen(items, scenes, self.max_assets)
        if len(kept) < len(items):
            self.left_out[kind] = self.left_out.get(kind, 0) + len(items) - len(kept)
        return kept

    def para_sentences(self, i: int) -> list[str]:
        got = self._sentences.get(i)
        if got is None:
            got = sentences(self.paragraphs[i].text)
            self._sentences[i] = got
        return got

    def sentence_spans(self, i: int) -> list[tuple[int, str]]:
        """(offset, sentence) of paragraph i, found once."""
        got = self._spans.get(i)
        if got is None:
            text = self.paragraphs[i].text
            got, offset = [], 0
            for s in self.para_sentences(i):
                at = text.find(s, offset)
                got.append((at, s))
                offset = max(offset, at)
            self._spans[i] = got
        return got

    @property
    def scene_by_number(self) -> dict:
        got = self._by_number
        if got is None:
            got = self._by_number = {s.number: s for s in self.sp.scenes}
        return got

    @property
    def heading_scenes(self) -> list[int]:
        return [s.number for s in self.sp.scenes if s.number > 0]


def _split_caps(text: str, scene: int, para: int, standalone: bool) -> list[CapsSpan]:
    spans: list[CapsSpan] = []
    words = list(_WORD.finditer(text))
    quote_open = False
    paren_depth = 0
    run: list[re.Match] = []
    last_end = 0

    def flush() -> None:
        if not run:
            return
        # trim joiners at either end ("THE" alone before a lower-case word is no span)
        items = list(run)
        while items and items[-1].group(0).rstrip(".,").upper() in _CAPS_JOINERS:
            items.pop()
        while items and items[0].group(0).upper() in ("A", "AN", "I"):
            items.pop(0)
        if items:
            ws = [m.group(0) for m in items]
            ws[-1] = ws[-1].rstrip(".")
            if ws[-1] and any(c.isalpha() and len(w) > 1 for w in ws for c in w):
                s, e = items[0].start(), items[-1].start() + len(ws[-1])
                spans.append(CapsSpan(ws, scene, para, s, e, text, standalone))
        run.clear()

    for m in words:
        start = m.start()
        if start - last_end == 1 and text[last_end] == " ":
            gap_breaks = False  # the common gap: one space (no quote, bracket or stop)
        else:
            gap = text[last_end:start]
            quote_open ^= gap.count('"') % 2 == 1
            paren_depth += gap.count("(") - gap.count(")")
            gap_breaks = _GAP_BREAK.search(gap) is not None
        last_end = m.end()
        word = m.group(0)
        if run and (
            gap_breaks
            or (
                run[-1].group(0).endswith(".")
                and run[-1].group(0).upper() not in _ABBREV_SET
            )
        ):
            flush()
        if quote_open or paren_depth > 0 or not is_caps_word(word):
            if run:
                flush()
            continue
        run.append(m)
    flush()
    return spans


_ABBREV_SET = {
    "DR.",
    "MR.",
    "MRS.",
    "MS.",
    "ST.",
    "JR.",
    "SR.",
    "MT.",
    "A.P.",
    "U.S.",
    "L.A.",
}


def build_index(sp: Screenplay) -> Index:
    index = Index(sp=sp, title=sp.title or "", scene_numbers=[s.number for s in sp.scenes])
    by_number = {s.number: s for s in sp.scenes}
    speaker = ""
    for el in sp.elements:
        kind = el.type
        if kind == "scene_heading":
            scene = by_number.get(el.scene)
            if scene is not None and scene.forced:
                index.paragraphs.append(Paragraph(el.scene, "forced_heading", clean(el.text)))
            continue
        if kind == "character":
            name = clean(el.name or el.text).rstrip("^").strip().lstrip("@").strip()
            speaker = _SPACES.sub(" ", name.upper())
            index.cues.append(Cue(speaker, list(el.extensions or []), el.scene, ""))
            continue
        if kind == "dialogue" or kind == "lyrics" and speaker:
            text = clean(el.text)
            if index.cues and index.cues[-1].scene == el.scene and not index.cues[-1].line:
                index.cues[-1].line = text
            index.paragraphs.append(Paragraph(el.scene, "dialogue", text, speaker))
            continue
        if kind in ("action", "centered", "lyrics"):
            speaker = ""
            text = clean(el.text)
            if text:
                index.paragraphs.append(Paragraph(el.scene, "action", text))
            continue
        if kind != "parenthetical":
            speaker = ""
    for i, p in enumerate(index.paragraphs):
        if p.kind != "action" or not _TWO_CAPS.search(p.text):
            continue
        standalone = p.text.isupper()
        index.caps.extend(_split_caps(p.text, p.scene, i, standalone))
    return index
