"""How an image model reads text: the prompt budget each backend declares.

A `TextBudget` says what a prompt is measured in (`tokens` of the model's own tokenizer,
`characters` for a remote API's documented limit, or nothing), the limit, the encoder's name
and whether the model reads long prompts properly (a T5 encoder: SD3, FLUX). `compose` in
`stage5cli.prompting` builds a prompt that fits it.

Counters:
- `TokenizerCounter`: a Hugging Face tokenizer (the loaded pipeline's own), specials included;
- `ClipCounter`: OpenAI CLIP's BPE from the merges shipped in the package (`clip_bpe`), the
  counter used when the model is not at hand (style import, unknown api models);
- `CharCounter`: characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from . import clip_bpe

CLIP_WINDOW = clip_bpe.WINDOW

# Documented prompt limits of the big image APIs, in characters (the model's last path
# segment starts with the key). OpenAI Images API reference: prompt "maximum length is 32000
# characters for gpt-image-1, 1000 characters for dall-e-2 and 4000 characters for dall-e-3".
API_CHAR_LIMITS: dict[str, int] = {
    "gpt-image": 32000,
    "chatgpt-image": 32000,
    "dall-e-3": 4000,
    "dall-e-2": 1000,
}


class Counter(Protocol):
    name: str

    def count(self, text: str) -> int: ...


class CharCounter:
    name = "characters"

    def count(self, text: str) -> int:
        return len(text)


class ClipCounter:
    name = "clip-bpe"

    def count(self, text: str) -> int:
        return clip_bpe.count(text)


class TokenizerCounter:
    """A Hugging Face tokenizer: tokens with the model's special tokens, never truncated."""

    def __init__(self, tokenizer: Any, name: str | None = None):
        self.tokenizer = tokenizer
        self.name = name or type(tokenizer).__name__

    def count(self, text: str) -> int:
        ids = self.tokenizer(text, truncation=False, add_special_tokens=True,
                             verbose=False)["input_ids"]
        return len(ids)


@dataclass
class TextBudget:
    """What a backend's model reads: `limit` in `unit` (None: no limit)."""

    unit: str | None  # "tokens" | "characters" | None
    limit: int | None
    encoder: str  # e.g. "clip (77 tokens)", "t5 (256 tokens)", "dall-e-3 (4000 characters)"
    counter: Counter | None = None
    long_prompt: str | None = None  # "t5" when the pipeline reads the full text
    notes: list[str] = field(default_factory=list)

    def count(self, text: str) -> int | None:
        return None if self.counter is None else self.counter.count(text)

    def fits(self, text: str) -> bool:
        return self.limit is None or self.counter is None or self.counter.count(text) <= self.limit

    def describe(self) -> str:
        return self.encoder if self.limit is None else f"{self.encoder}: {self.limit} {self.unit}"

    def record(self) -> dict[str, Any]:
        return {"unit": self.unit, "limit": self.limit, "encoder": self.encoder,
                "counter": None if self.counter is None else self.counter.name,
                "long_prompt": self.long_prompt}


def unlimited(encoder: str = "none") -> TextBudget:
    return TextBudget(unit=None, limit=None, encoder=encoder)


def clip_budget(encoder: str = "clip", note: str | None = None) -> TextBudget:
    """The 77-token CLIP window, counted with the shipped CLIP BPE."""
    return TextBudget(unit="tokens", limit=CLIP_WINDOW, encoder=encoder, counter=ClipCounter(),
                      notes=[note] if note else [])


def api_budget(model: str) -> TextBudget:
    """A remote model's documented character limit; unknown models are assumed to read through
    a CLIP encoder (the strictest common window), so the style survives whatever serves them."""
    last = (model or "").rsplit("/", 1)[-1].lower()
    for prefix, limit in API_CHAR_LIMITS.items():
        if last.startswith(prefix):
            return TextBudget(unit="characters", limit=limit, encoder=prefix,
                              counter=CharCounter())
    return clip_budget("clip (assumed)", note=f"no documented prompt limit for {model!r}: "
                       "sized for a 77-token CLIP encoder")


# ---- diffusers pipelines -------------------------------------------------------------------

_HUGE = 10**6  # transformers' "no limit" sentinel is ~1e30


def _is_t5(tokenizer: Any) -> bool:
    name = type(tokenizer).__name__.lower()
    return "t5" in name or "llama" in name or "gemma" in name or "qwen" in name


def pipeline_budget(tokenizers: dict[str, Any], max_sequence_length: int | None = None
                    ) -> TextBudget | None:
    """The budget of a diffusers pipeline from its tokenizers (component name -> tokenizer).

    A T5-style encoder (SD3's tokenizer_3, FLUX's tokenizer_2) reads long prompts: the budget is
    its window (the pipeline's `max_sequence_length` default when known). Otherwise the
    strictest CLIP-style window (SD 1.x/2.x: tokenizer; SDXL: tokenizer and tokenizer_2).
    None when there is no tokenizer at all."""
    if not tokenizers:
        return None
    long = {k: t for k, t in tokenizers.items() if _is_t5(t)}
    if long:
        key, tok = next(iter(long.items()))
        window = int(getattr(tok, "model_max_length", 0) or 0)
        if max_sequence_length:
            window = min(window, max_sequence_length) if 0 < window < _HUGE else max_sequence_length
        if not 0 < window < _HUGE:
            window = 256
        others = sorted(set(tokenizers) - {key})
        note = (f"the CLIP encoder(s) ({', '.join(others)}) read the first {CLIP_WINDOW} tokens"
                if others else None)
        return TextBudget(unit="tokens", limit=window, encoder=f"t5 ({key})",
                          counter=TokenizerCounter(tok), long_prompt="t5",
                          notes=[note] if note else [])
    best: tuple[int, str, Any] | None = None
    for key, tok in sorted(tokenizers.items()):
        window = int(getattr(tok, "model_max_length", 0) or 0)
        if not 0 < window < _HUGE:
            window = CLIP_WINDOW  # an unset limit on a CLIP tokenizer: the encoder's 77
        if best is None or window < best[0]:
            best = (window, key, tok)
    assert best is not None
    window, key, tok = best
    return TextBudget(unit="tokens", limit=window, encoder=f"clip ({key})",
                      counter=TokenizerCounter(tok))
