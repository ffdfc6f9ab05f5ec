"""The real CLIP BPE tokenizer, rebuilt from the vendored merges (prompts/clip, MIT).

`clip_tokenizer()` returns a `transformers.CLIPTokenizer` with OpenAI CLIP's 49408-token
vocabulary and a 77-token window, the one Stable Diffusion 1.x/2.x and SDXL read prompts
with. `write_clip_tokenizer(folder)` writes its `vocab.json` / `merges.txt` (for a pipeline
folder). No download: the merges ship in prompts/clip (see SOURCE.md there).
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

from stage5cli.images.clip_bpe import byte_encoder

MERGES = Path(__file__).resolve().parents[1] / "prompts" / "clip" / "bpe_simple_vocab_16e6.merges.txt.gz"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


@functools.cache
def clip_vocab() -> tuple[dict[str, int], list[str]]:
    """(vocab token -> id, merge lines) exactly as open_clip's SimpleTokenizer builds them."""
    lines = gzip.open(MERGES, "rt", encoding="utf-8").read().split("\n")
    merges = [m for m in lines[1:] if m]
    alphabet = list(byte_encoder().values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges]
    tokens += [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_clip_tokenizer(folder: Path) -> Path:
    """vocab.json + merges.txt of the CLIP tokenizer in `folder`."""
    vocab, merges = clip_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n",
                                       encoding="utf-8")
    return folder


@functools.cache
def clip_tokenizer():
    """A transformers CLIPTokenizer with the real CLIP vocabulary (77-token window)."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    return CLIPTokenizer(vocab=dict(vocab), merges=[tuple(m.split()) for m in merges],
                         model_max_length=77, bos_token=BOS, eos_token=EOS, unk_token=EOS,
                         pad_token=EOS)
