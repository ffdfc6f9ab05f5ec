"""OpenAI CLIP's text tokenizer, for counting: how many tokens a prompt takes in a 77-token
CLIP window (Stable Diffusion 1.x/2.x, SDXL), beginning and end tokens included.

The byte-pair merges ship as package data (`prompts/clip/`, from the open-clip-torch wheel,
MIT; see SOURCE.md there). This is the algorithm of `open_clip.tokenizer.SimpleTokenizer`
without its ftfy pass (text is NFC-normalised and HTML-unescaped instead), loaded on first use
and cached per word. It needs no torch or transformers, so `style import`, the api backend and
the placeholder backend can size prompts exactly like a CLIP encoder would.
"""

from __future__ import annotations

import functools
import gzip
import html
import unicodedata

WINDOW = 77  # CLIP's text context, including <|startoftext|> and <|endoftext|>
MERGES_FILE = "bpe_simple_vocab_16e6.merges.txt.gz"


@functools.cache
def _ranks() -> dict[tuple[str, str], int]:
    from importlib.resources import files

    data = (files("stage5cli.prompts") / "clip" / MERGES_FILE).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").split("\n")[1:]
    return {tuple(m.split()): i for i, m in enumerate(m for m in lines if m)}  # type: ignore[misc]


@functools.cache
def byte_encoder() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table (the BPE alphabet)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


@functools.cache
def _pattern():
    try:
        import regex

        return regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                             regex.IGNORECASE)
    except ImportError:  # pragma: no cover - regex comes with litellm (tiktoken)
        import re

        return re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+""", re.IGNORECASE)


@functools.lru_cache(maxsize=65536)
def _bpe(token: str) -> int:
    """How many BPE pieces one pre-token becomes."""
    ranks = _ranks()
    word = [*token[:-1], token[-1] + "</w>"]
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        first, second = best
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return len(word)


def clean(text: str) -> str:
    text = html.unescape(html.unescape(unicodedata.normalize("NFC", text)))
    return " ".join(text.split()).lower()


def count(text: str) -> int:
    """CLIP tokens of `text`, with the beginning and end tokens (so '' is 2)."""
    enc = byte_encoder()
    n = 2
    for piece in _pattern().findall(clean(text)):
        n += _bpe("".join(enc[b] for b in piece.encode("utf-8")))
    return n
