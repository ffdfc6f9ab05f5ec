"""Names: the one normaliser, union-find, age pattern and title casing both extractors share.

    norm_name("THE OLD MAN (V.O.)") -> "old man"     the matching form (merge.py, assets.py)
    display_name("Old Man's")       -> "Old Man"     a name as shown
    title_case("DR. BENNETT")       -> "Dr. Bennett"
    AGE_AFTER.match(text, end)      -> the age written after a name ("BRICK, 40s", "Will (29)")
    UnionFind                       -> groups of names/indices that are the same thing

The heading vocabulary (times of day, continuity tags) is the parser's, in
screenplay/scenes.py; `norm_name` strips a time-of-day suffix built from it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable
from functools import lru_cache
from typing import Any, Generic, TypeVar

from stage5cli.screenplay.scenes import (
    CONTINUITY_TAGS,
    TIME_FILLER_WORDS,
    TIME_WORDS,
    has_heading_prefix,
    split_heading,
)

K = TypeVar("K", bound=Hashable)

# Entries of each cache of a pure function of a word or name (here and in builtin/): a real
# script asks about fewer than 4,000 distinct ones (Big Fish), so the hits are the same; the
# bound keeps a hostile script of 240,000 distinct headings (or a long-lived `serve`) from
# holding hundreds of MB of cached strings.
WORD_CACHE = 1 << 15

PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
SPACES = re.compile(r"\s+")


def _alternation(words: Iterable[str]) -> str:
    forms = {w.lower().replace("’", "'") for w in words}
    return "|".join(re.escape(w).replace(r"\ ", r"\s+").replace("'", "'?")  # CONT'D, CONTD
                    for w in sorted(forms, key=len, reverse=True))


# "HOUSE - NIGHT", "Bob - a moment later", "garden - flashback": a dash, then a time of day or a
# continuity tag (the parser's words), then anything
TIME_SUFFIX = re.compile(
    rf"\s+-+\s*(?:(?:{_alternation(TIME_FILLER_WORDS)})\s+)*"
    rf"(?:{_alternation(TIME_WORDS | CONTINUITY_TAGS)})\b.*$",
    re.IGNORECASE,
)
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_POSSESSIVE = re.compile(r"(?<=\w)'s\b|(?<=s)'(?=\s|$)")
_NON_WORD = re.compile(r"[^\w\s'&-]+")
_DASH = re.compile(r"(?<=\s)[-']+(?=\s)")

# An age written right after a name: "BRICK, 40s,", "EDWARD, about 60", "Will (29)",
# "WILL is now 17". The number must end there (not the start of "1984").
AGE_AFTER = re.compile(
    r"\s*(?:,\s*(?:age\s+|aged\s+|now\s+|about\s+|around\s+|maybe\s+)?|\(\s*|\s+is\s+(?:now\s+)?)"
    r"(?P<age>\d{1,3})(?:'?s\b|\s*\)|,|\.|\s|$)",
    re.IGNORECASE,
)


def literal_alternation(forms: Iterable[str]) -> str:
    """A regex matching any of the literal strings, longest first, built as a trie.

    Equivalent to "|".join(escaped forms sorted longest first), but a position costs the length
    of the match, not the number of forms: a script with thousands of names stays linear.
    """
    trie: dict = {}
    long: list[str] = []
    for f in forms:
        if len(f) > 200:  # kept out of the trie (its recursion depth is the form's length)
            long.append(f)
            continue
        if not f:
            continue
        node = trie
        for ch in f:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a shorter form ends here: the longer ones are tried first
            body = "(?:" + body + ")?"
        return body

    parts = [re.escape(f) for f in sorted(long, key=len, reverse=True)]
    if trie:
        parts.append(build(trie))
    return "|".join(parts) if parts else "(?!)"


@lru_cache(maxsize=8)
def whole_word_regex(forms: frozenset[str]) -> re.Pattern:
    r"""`(?<![\w'])(?:form|...)(?![\w])` as a trie regex, compiled once per set of forms.

    One extraction asks for the same set several times (every character's spellings: the
    mentions scan, pass 2's evidence scan, the `people` pattern, each a WholeWords): building
    the trie of thousands of forms cost more than the scans, so it is built once (re's own
    cache would still rebuild the pattern string each time).
    """
    return re.compile(r"(?<![\w'])(?:" + literal_alternation(forms) + r")(?![\w])")


class _Hit:
    """One occurrence found by WholeWords (the parts of re.Match its callers use)."""

    __slots__ = ("_end", "_start", "_text")

    def __init__(self, start: int, end: int, text: str):
        self._start, self._end, self._text = start, end, text

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def span(self) -> tuple[int, int]:
        return self._start, self._end

    def group(self, index: int = 0) -> str:
        if index:
            raise IndexError("no such group")
        return self._text


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what \w matches in a str pattern


# where a whole word starts ("(?<![\w'])") and the run of word characters it opens
_WORD_START = re.compile(r"(?<![\w'])\w+")
_LEADING_RUN = re.compile(r"\w+")


class WholeWords:
    r"""Occurrences of any of some literal strings as whole words, case-sensitive: the matches
    of `(?<![\w'])(?:form|...)(?![\w])` with the longest form first at each position.

    A few forms (one character's own spellings, asked about thousands of times on a long
    script) are found with str.find: compiling a regex per character cost more than all its
    searches. Some forms (the characters of a usual script) are one trie regex
    (literal_alternation), linear in the text whatever their number. Very many forms (10,000
    characters or props) are looked up by the word they start with: re's compiler, written in
    Python, took longer over a trie of 50,000 forms than every search in it.
    """

    FEW = 12
    # above this, building the regex costs more than the lookup's slower searches (each word
    # of a searched text visited in Python); a usual script's few hundred spellings stay below
    MANY = 2000

    def __init__(self, forms: Iterable[str]):
        # a set: str.find sorts what it finds, the regex and the lookup order their own
        self.forms = frozenset(f for f in forms if f)
        self._re: re.Pattern | None = None
        self._by_word: dict[str, list[str]] | None = None
        self._prepared = len(self.forms) <= self.FEW  # str.find needs nothing built

    def _prepare(self) -> None:
        """The lookup, built at the first search: a script whose characters never share an
        action sentence never needs it.

        A form that starts with a word character can only match where a whole word starts,
        and only when that word's run of word characters is the form's own first run (a
        shorter run would leave the form's end inside a word, a longer one would differ):
        so the forms are filed under their first run, longest first. A form opening with
        punctuation ("'TIL", "(V.O.)") leaves the lot to the trie regex.
        """
        if len(self.forms) > self.MANY and all(_word_char(f[0]) for f in self.forms):
            by_word: dict[str, list[str]] = {}
            for f in sorted(self.forms, key=len, reverse=True):  # the lists longest first
                by_word.setdefault(_LEADING_RUN.match(f).group(), []).append(f)
            self._by_word = by_word
        else:
            self._re = whole_word_regex(self.forms)
        # set last: one shared by two threads (whole_words) is at worst prepared twice
        self._prepared = True

    def __bool__(self) -> bool:
        return bool(self.forms)

    def finditer(self, text: str) -> Iterable:
        if not self._prepared:
            self._prepare()
        if self._re is not None:
            return self._re.finditer(text)
        if self._by_word is not None:
            return self._by_words(text)
        return self._by_find(text)

    def _by_words(self, text: str) -> list[_Hit]:
        by_word = self._by_word
        assert by_word is not None
        if by_word.keys().isdisjoint(_WORD_START.findall(text)):
            return []  # most text names nobody: decided without a Python loop over its words
        hits: list[_Hit] = []
        end, n = 0, len(text)
        for m in _WORD_START.finditer(text):
            i = m.start()
            forms = by_word.get(m.group()) if i >= end else None
            for f in forms or ():
                j = i + len(f)
                if text.startswith(f, i) and (j == n or not _word_char(text[j])):
                    hits.append(_Hit(i, j, f))
                    end = j
                    break
        return hits

    def _by_find(self, text: str) -> list[_Hit]:
        found: list[tuple[int, int, str]] = []
        n = len(text)
        for f in self.forms:
            i = text.find(f)
            while i >= 0:
                j = i + len(f)
                if (i == 0 or not (_word_char(text[i - 1]) or text[i - 1] == "'")) and (
                        j == n or not _word_char(text[j])):
                    found.append((i, -len(f), f))
                i = text.find(f, i + 1)
        found.sort()  # leftmost first, the longest form at one position first
        hits, end = [], 0
        for i, neg, f in found:
            if i >= end:
                hits.append(_Hit(i, i - neg, f))
                end = i - neg
        return hits

    def search(self, text: str):
        if not self._prepared:
            self._prepare()
        if self._re is not None:
            return self._re.search(text)
        return next(iter(self.finditer(text)), None)


@lru_cache(maxsize=8)
def whole_words(forms: frozenset[str]) -> WholeWords:
    """WholeWords of a set of forms, built once per set: the mentions scan and pass 2's
    evidence scan ask for the same spellings of every character."""
    return WholeWords(forms)


def fold(text: str) -> str:
    """NFKC, curly quotes and backticks as ', en and em dashes as -."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("’", "'").replace("‘", "'").replace("`", "'")
    return text.replace("–", "-").replace("—", "-")


@lru_cache(maxsize=WORD_CACHE)  # pure; a long script asks about the same names many times
def norm_name(name: str) -> str:
    """The matching form of a name: lower case, no article, possessive, extension or punctuation.

    Scene-heading decorations (INT./EXT. prefixes, "- NIGHT" suffixes) are removed too, so a
    location named after its heading matches the plain place name.
    """
    raw = fold(name or "")
    # (each substitution only where its pattern can match: most names have no brackets,
    # dashes or apostrophes, and a script of 240,000 distinct headings asks about each)
    text = PARENS.sub(" ", raw) if "(" in raw or "[" in raw else raw
    text = " ".join(text.split())
    # the parser's own heading rules (only a text with an INT./EXT. prefix has an int_ext)
    int_ext, location = split_heading(text)[:2] if has_heading_prefix(text) else (None, "")
    if int_ext is not None and location:
        text = location
    elif "-" in text:  # TIME_SUFFIX starts with a dash
        text = TIME_SUFFIX.sub("", text)
    text = text.lower()
    if "'" in text:
        text = _POSSESSIVE.sub("", text)
    text = _NON_WORD.sub(" ", text.replace(".", " "))
    if "-" in text or "'" in text:
        text = _DASH.sub(" ", f" {text} ")
    text = " ".join(text.split()).strip(" '-&")
    stripped = _ARTICLE.sub("", text)
    if stripped:
        text = stripped
    if not text:  # nothing but punctuation/extension: fall back to the plain lower-cased form
        text = SPACES.sub(" ", raw.lower()).strip()
    return text


_POSSESSIVE_END = re.compile(r"'s$", re.IGNORECASE)


@lru_cache(maxsize=WORD_CACHE)
def display_name(name: str) -> str:
    """A name as shown: extensions such as (V.O.) and a trailing possessive removed."""
    text = SPACES.sub(" ", PARENS.sub(" ", fold(name or ""))).strip()
    text = _POSSESSIVE_END.sub("", text).strip()
    return text or (name or "").strip()


def title_case(name: str) -> str:
    """Words in capitals written in title case ("4TH FLOOR" -> "4th Floor", "DR. BENNETT" ->
    "Dr. Bennett"); mixed-case words and single letters unchanged ("McDONALD", "A")."""
    return " ".join(w[:1].upper() + w[1:].lower() if w.isupper() and len(w) > 1 else w
                    for w in name.split())


class Memo(dict):
    """`fn` of each distinct key, made once and kept for as long as this dict lives (one
    call's worth): `Memo(place_key)[name]`, or `Memo(Character)[key]` to make on first use."""

    def __init__(self, fn: Callable[[Any], Any]):
        super().__init__()
        self.fn = fn

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.fn(key)
        return value


class UnionFind(Generic[K]):
    """Disjoint sets of keys; a set's root is its smallest key (deterministic groups)."""

    def __init__(self, keys: Iterable[K] = ()):
        self.parent: dict[K, K] = {}
        for k in keys:
            self.parent.setdefault(k, k)

    def find(self, k: K) -> K:
        parent = self.parent
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    def union(self, a: K, b: K) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # type: ignore[type-var]
