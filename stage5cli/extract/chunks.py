"""Render a Screenplay's scenes as prompt text and split them into chunks of whole scenes.

Tokens are estimated as characters / 4 (the usual rule of thumb for English with the GPT and
Claude tokenisers). litellm's exact counter takes about 0.4 s for a 120-page script and needs
the model's tokenizer; a budget does not need that precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stage5cli.screenplay.model import Scene, Screenplay

# Rendered element types; the rest (transitions, page breaks, sections, synopses, notes,
# title page) carry nothing visual and only cost tokens.
_PROSE = {"action", "centered", "lyrics"}
_SPEECH = {"parenthetical", "dialogue"}


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def defuse(text: str) -> str:
    """Script text with any copy of the prompts' data delimiters (<<<SCRIPT ... SCRIPT>>>, in
    prompts/*.txt) broken, so data cannot close the block."""
    return text.replace("<<<", "<< <").replace(">>>", "> >>")


def _lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in (text or "").replace("\r", "").split("\n") if ln.strip()]


def scene_label(scene: Scene) -> str:
    heading = " ".join(scene.heading.split()) if scene.heading else ""
    if scene.number == 0 and not heading:
        heading = "(before the first scene heading)"
    return f"[Scene {scene.number}] {heading}".rstrip()


def render_scene(sp: Screenplay, scene: Scene) -> str:
    """One scene as compact prompt text: a labelled heading, prose, `CUE: (paren) dialogue`."""
    out = [scene_label(scene)]
    speech: list[str] | None = None

    def flush() -> None:
        nonlocal speech
        if speech is not None:
            out.append(" ".join(speech))
            speech = None

    for el in sp.scene_elements(scene):
        if el.type == "character":
            flush()
            speech = [f"{' '.join((el.text or el.name or '').split())}:"]
        elif el.type in _SPEECH and speech is not None:
            speech.append(" ".join((el.text or "").split()))
        elif el.type in _PROSE or el.type in _SPEECH:
            flush()
            out.extend(" ".join(ln.split()) for ln in _lines(el.text))
        else:
            flush()
    flush()
    return defuse("\n".join(out))


def scene_texts(sp: Screenplay) -> list[tuple[Scene, str]]:
    """Every scene worth sending, in order (an empty prologue before the first heading is not)."""
    result = []
    for scene in sp.scenes:
        text = render_scene(sp, scene)
        if scene.number == 0 and text == scene_label(scene):
            continue
        result.append((scene, text))
    return result


def script_tokens(sp: Screenplay) -> int:
    """Estimated tokens of the whole script as rendered for the model (scenes joined)."""
    return estimate_tokens("\n\n".join(t for _, t in scene_texts(sp)))


@dataclass
class Chunk:
    index: int
    scenes: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tokens: int = 0

    @property
    def text(self) -> str:
        return "\n\n".join(self.texts)

    @property
    def label(self) -> str:
        if not self.scenes:
            return f"chunk {self.index + 1}"
        a, b = self.scenes[0], self.scenes[-1]
        return f"chunk {self.index + 1} (scene{'s' if a != b else ''} {a}{f'-{b}' if a != b else ''})"


def split_chunks(sp: Screenplay, chunk_tokens: int) -> list[Chunk]:
    """Whole scenes grouped into chunks of at most `chunk_tokens` (a longer scene is alone).

    Chunks are balanced: the script is cut into the fewest chunks the budget allows, each near
    the same size, so concurrent requests finish together.
    """
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    items = [(scene.number, text, estimate_tokens(text) + 1) for scene, text in scene_texts(sp)]
    if not items:
        return []
    total = sum(t for _, _, t in items)
    target = total / math.ceil(total / chunk_tokens)
    chunks: list[Chunk] = []
    cur = Chunk(0)
    for number, text, tokens in items:
        if cur.scenes and cur.tokens + tokens > chunk_tokens:
            chunks.append(cur)
            cur = Chunk(len(chunks))
        cur.scenes.append(number)
        cur.texts.append(text)
        cur.tokens += tokens
        if cur.tokens >= target:
            chunks.append(cur)
            cur = Chunk(len(chunks))
    if cur.scenes:
        chunks.append(cur)
    return chunks
