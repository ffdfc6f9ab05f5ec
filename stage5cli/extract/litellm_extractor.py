"""The LLM extractor (LiteLLMExtractor): two-pass extraction through litellm: concurrent, cached, validated, repaired.

Pass 1 sends the script in chunks of whole scenes (all chunks at once under one semaphore) and
asks for entities with aliases and scene mentions; the answers are merged across chunks.
Pass 2 sends one request per merged asset (all at once under the same semaphore) for a 3-5
sentence visual description, a confidence, a priority flag and visual conflicts.
A chunk or asset whose answer stays invalid after one repair request is reported in
`failures`; the rest carry on. Errors that would fail every request (no key, unknown model)
stop the run with one Stage5Error line.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import sqlite_utils

from stage5cli.errors import Stage5Error, UsageError
from stage5cli.extract.base import ConflictFix, ExtractionResult, Extractor, LLMOptions, Progress
from stage5cli.models import Distilled, ExtractedAsset, Mention, Pass1Response
from stage5cli.screenplay.model import Screenplay

from .chunks import Chunk, defuse, estimate_tokens, script_tokens, split_chunks
from .llm_calls import Caller, LLMItemError, load_prompt, run
from .merge import GENERIC, match_key, merge_assets, norm_name
from .names import PARENS

__all__ = [
    "LiteLLMExtractor", "extract_llm", "run_extract_llm", "plan_llm", "distill",
    "suggest_conflict_fix",
]

T = TypeVar("T")
MAX_CONTEXTS = 12  # mentions per asset that keep their context quote (all keep their scene)
MAX_QUOTE = 300
MAX_MENTION_TEXT = 120
# rough output sizes for --dry-run (tokens)
PASS1_OUTPUT_RATIO = 0.35
PASS2_OUTPUT_TOKENS = 180
CONTEXT_TOKENS = 35


# ---- pass 1 ----------------------------------------------------------------------------------


def _clip(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def pass1_messages(chunk: Chunk) -> list[dict]:
    return load_prompt("pass1").messages(script=chunk.text)


_TYPE_SYNONYMS = {
    "person": "character", "people": "character", "creature": "character", "animal": "character",
    "characters": "character", "object": "prop", "item": "prop", "vehicle": "prop",
    "weapon": "prop", "props": "prop", "place": "location", "setting": "location",
    "locations": "location", "set": "location",
}


def parse_pass1(obj: dict, chunk: Chunk,
                ungrounded: list[tuple[str, str]] | None = None) -> list[ExtractedAsset]:
    """Validate a pass-1 answer (common type synonyms mapped first) and convert it; entities
    not named in the chunk go to `ungrounded` (see entities_to_assets)."""
    ents = obj.get("entities")
    if isinstance(ents, list):
        for ent in ents:
            if isinstance(ent, dict) and isinstance(ent.get("type"), str):
                t = ent["type"].strip().lower()
                ent["type"] = _TYPE_SYNONYMS.get(t, t)
    return entities_to_assets(Pass1Response.model_validate(obj), chunk, ungrounded)


# ---- grounding: an entity must be named in the text it came from ----------------------------

# Words that cannot ground a name on their own: function words, titles, and the descriptors a
# model puts in front of anyone ("the old man", "young woman"). A name made only of these is
# grounded by the whole phrase occurring in the text.
_WEAK_WORDS = GENERIC | frozenset(
    "a an and the of for with from into onto in on at by to or nor but as is are was be "
    "mr mrs ms miss dr sir madam lord lady st mister doctor "
    "old young little big small tall short man men woman women boy girl guy kid child "
    "person people someone thing room place".split()
)
_WORD = re.compile(r"[^\W_]+")


def _fold_word(word: str) -> str:
    """A word's matching form: case- and accent-free ("Inés" = "ines", "STRASSE" = "straße")."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.casefold())
                   if not unicodedata.combining(c))


def _forms(word: str) -> set[str]:
    """A folded word and the singulars it may be the plural of ("boxes": boxe, box)."""
    out = {word}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        out.add(word[:-1])
        if word.endswith("es"):
            out.add(word[:-2])
        if word.endswith("ies"):
            out.add(word[:-3] + "y")
    return out


def fold_key(key: str) -> str:
    """A merge key (merge.norm_name form) without accents and with its last word singular
    ("brass lanterns" = "brass lantern", "ines" = "inés"); for merge_assets(fold=...)."""
    words = [_fold_word(w) for w in key.split()]
    if words:
        last = words[-1]
        if len(last) > 4 and last.endswith("ies"):
            words[-1] = last[:-3] + "y"
        elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
            words[-1] = last[:-1]
    return " ".join(words)


def fold_words(text: str) -> list[str]:
    """The text as matching forms of its words (a possessive 's falls away as a lone 's')."""
    return [f for f in (_fold_word(w) for w in _WORD.findall(text or "")) if f and f != "s"]


class ChunkWords:
    """The words of one chunk's text, for grounding the entities a model returned for it."""

    def __init__(self, text: str):
        self.seq = fold_words(text)
        self.forms = frozenset(f for w in set(self.seq) for f in _forms(w))
        self.joined = f" {' '.join(self.seq)} "

    def names(self, name: str) -> bool:
        """True when `name` (extensions such as (V.O.) aside) occurs in the text: one of its
        significant words does (in either number), or, when it has none, the whole phrase."""
        words = fold_words(PARENS.sub(" ", name))
        if not words:
            return False
        strong = [w for w in words if w not in _WEAK_WORDS and len(w) > 2]
        if strong:
            return any(_forms(w) & self.forms for w in strong)
        return f" {' '.join(words)} " in self.joined


def entities_to_assets(resp: Pass1Response, chunk: Chunk,
                       ungrounded: list[tuple[str, str]] | None = None) -> list[ExtractedAsset]:
    """Pass-1 entities of one chunk as assets; mentions outside the chunk's scenes are dropped.

    Grounding: an entity none of whose names (name or aliases) occurs in the chunk's text is
    dropped and, when `ungrounded` is given, listed there as (type, name) (a model's
    "ominous atmosphere" is no asset). An entity left with no valid mention gets the chunk's
    scenes whose text names it; one that names nothing in them is dropped as well.
    """
    in_chunk = set(chunk.scenes)
    lowered = {n: t.lower() for n, t in zip(chunk.scenes, chunk.texts, strict=True)}
    words = ChunkWords(chunk.text)
    out = []
    for ent in resp.entities:
        name = _clip(ent.name, MAX_MENTION_TEXT)
        if not name:
            continue
        aliases = list(dict.fromkeys(a for a in (_clip(x, MAX_MENTION_TEXT) for x in ent.aliases)
                                     if a and a.lower() != name.lower()))
        if not any(words.names(n) for n in [name, *aliases]):
            if ungrounded is not None:
                ungrounded.append((ent.type, name))
            continue
        # an alias that is nowhere in the text is kept: it may be how another chunk names it
        mentions = [
            Mention(scene_number=m.sceneNumber, text=_clip(m.text, MAX_MENTION_TEXT) or name,
                    context=_clip(defuse(m.context), MAX_QUOTE))
            for m in ent.mentions if m.sceneNumber in in_chunk
        ]
        if not mentions:
            words = [w.lower() for w in [name, *aliases] if len(w) > 1]
            mentions = [Mention(scene_number=n, text=name) for n in chunk.scenes
                        if any(w in lowered[n] for w in words)]
        if mentions:
            extra = {"extractor": "llm", **({"category": ent.category} if ent.category else {})}
            out.append(ExtractedAsset(name=name, type=ent.type, aliases=aliases, mentions=mentions,
                                      extra=extra))
    return out


def bound_contexts(asset: ExtractedAsset, limit: int = MAX_CONTEXTS) -> ExtractedAsset:
    """Keep every mention, but context quotes on at most `limit`, spread over the scenes."""
    quoted = [i for i, m in enumerate(asset.mentions) if m.context]
    if len(quoted) <= limit:
        return asset
    keep = {quoted[round(k * (len(quoted) - 1) / (limit - 1))] for k in range(limit)}
    mentions = [m if i in keep else replace(m, context="")
                for i, m in enumerate(asset.mentions)]
    return asset.model_copy(update={"mentions": mentions})


# ---- pass 2 ----------------------------------------------------------------------------------

_ABBREVIATIONS = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Capt|Lt|Col|Gen|Sgt|Mt|Ft|vs|etc|approx|No|e\.g|i\.e)\.",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+")
MIN_SENTENCES, MAX_SENTENCES = 2, 6  # asked for 3-5; one either side is tolerated


def count_sentences(text: str) -> int:
    text = _ABBREVIATIONS.sub(lambda m: m.group(0)[:-1], " ".join(text.split()))
    return sum(1 for part in _SENTENCE_END.split(text) if re.search(r"\w", part))


def _ranges(numbers: Iterable[int]) -> str:
    nums = sorted(set(numbers))
    out: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(out) or "none"


def pass2_messages(asset: ExtractedAsset, style_name: str, instructions: str | None = None) -> list[dict]:
    excerpts = "\n".join(f"Scene {m.scene_number}: {defuse(m.context)}"
                         for m in asset.mentions if m.context)
    return load_prompt("pass2").messages(
        style=" ".join(style_name.split()),
        name=asset.name,
        type=asset.type,
        aliases=", ".join(asset.aliases) or "none",
        scenes=f"{_ranges(asset.scenes)} ({len(asset.scenes)} in all)",
        instructions=f"Instructions from the user: {' '.join(instructions.split())}"
        if instructions and instructions.strip() else "",
        excerpts=excerpts or "(no quotes: only its name appears)",
    )


def parse_distilled(obj: dict) -> Distilled:
    d = Distilled.model_validate(obj)
    n = count_sentences(d.description)
    if not MIN_SENTENCES <= n <= MAX_SENTENCES:
        raise ValueError(f"description: must be 3 to 5 sentences, got {n}")
    return d


def apply_distilled(asset: ExtractedAsset, d: Distilled, model: str) -> ExtractedAsset:
    return asset.model_copy(update={
        "description": " ".join(d.description.split()),
        "confidence_score": d.confidenceScore,
        "is_priority": d.isPriority,
        "has_conflicts": d.hasVisualConflicts,
        "conflict_details": " ".join((d.conflictDetails or "").split()) if d.hasVisualConflicts else "",
        "extra": {**asset.extra, "extractor": "llm", "model": model, "distilled": True},
    })


async def _distill(caller: Caller, asset: ExtractedAsset, style_name: str,
                   instructions: str | None = None) -> ExtractedAsset:
    prompt = load_prompt("pass2")
    d = await caller.complete_json(pass2_messages(asset, style_name, instructions),
                                   purpose="pass2", version=prompt.version, parse=parse_distilled)
    return apply_distilled(asset, d, caller.s.model)


# ---- running ---------------------------------------------------------------------------------


async def _all(caller: Caller, coros: list[Awaitable[T]]) -> list[T]:
    """Run concurrently. After an error that every call would hit (no key, unknown model), no
    new request starts; the ones in flight finish (they are not cancelled mid-call), then that
    one Stage5Error is raised."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    if caller.fatal is not None:
        raise caller.fatal
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


async def extract_llm(sp: Screenplay, db: sqlite_utils.Database, settings: LLMOptions, *,
                      style_name: str, progress: Progress | None = None) -> ExtractionResult:
    """Both passes over `sp`; every call logged in (and served from) `llm_calls` of `db`."""
    settings.check()
    chunks = split_chunks(sp, settings.chunk_tokens)
    if not chunks:
        raise UsageError("the script has no scenes to extract from")
    caller = Caller(db, settings)
    caller.preflight()
    tick = progress or (lambda *_: None)
    pass1 = load_prompt("pass1")
    failures: dict[tuple[int, int], str] = {}
    ungrounded: dict[int, list[tuple[str, str]]] = {}

    done = 0
    caller.size_for(len(chunks))
    tick("pass1", 0, len(chunks))

    async def one_chunk(chunk: Chunk) -> list[ExtractedAsset]:
        nonlocal done
        def parse(obj: dict) -> list[ExtractedAsset]:
            dropped: list[tuple[str, str]] = []
            assets = parse_pass1(obj, chunk, dropped)
            ungrounded[chunk.index] = dropped  # the accepted answer's (not a rejected one's)
            return assets

        try:
            return await caller.complete_json(
                pass1_messages(chunk), purpose="pass1", version=pass1.version, parse=parse)
        except LLMItemError as e:
            failures[(1, chunk.index)] = f"pass 1, {chunk.label}: {e}"
            return []
        finally:
            done += 1
            tick("pass1", done, len(chunks))

    found = await _all(caller, [one_chunk(c) for c in chunks])
    from stage5cli.store.extracted import cap, most_seen, scrubbed

    # scrubbed and capped (assets of a kind, aliases, mentions) before pass 2: its prompt never
    # carries a key a server echoed, and it stays bounded whatever pass 1 said
    kept, left_out = most_seen(
        scrubbed(merge_assets((a for batch in found for a in batch), fold=fold_key)),
        settings.max_assets)
    merged = [bound_contexts(a) for a in cap(kept)]

    done = 0
    caller.size_for(len(merged))
    tick("pass2", 0, len(merged))

    async def one_asset(i: int, asset: ExtractedAsset) -> ExtractedAsset:
        nonlocal done
        try:
            return await _distill(caller, asset, style_name)
        except LLMItemError as e:
            failures[(2, i)] = f"pass 2, {asset.type} {asset.name!r}: {e}"
            return asset.model_copy(update={"extra": {**asset.extra, "model": settings.model,
                                                      "distilled": False}})
        finally:
            done += 1
            tick("pass2", done, len(merged))

    assets = await _all(caller, [one_asset(i, a) for i, a in enumerate(merged)])
    return ExtractionResult(
        assets=assets,
        failures=[failures[k] for k in sorted(failures)],
        requests=caller.stats.requests,
        cache_hits=caller.stats.cache_hits,
        input_tokens=caller.stats.input_tokens,
        output_tokens=caller.stats.output_tokens,
        cost_usd=caller.stats.cost,
        script_tokens=script_tokens(sp),
        pass1_input_tokens=sum(_message_tokens(pass1_messages(c)) for c in chunks),
        ungrounded=_unfound(merged, [e for i in sorted(ungrounded) for e in ungrounded[i]]),
        concurrency=caller.concurrency_used,
        left_out=left_out,
        max_assets=settings.max_assets,
    )


def _unfound(assets: list[ExtractedAsset], dropped: list[tuple[str, str]]) -> list[str]:
    """The dropped entities as "type 'name'", once each, leaving out any that another chunk
    did ground (a name the model put in a chunk that lacks it is no invention)."""
    known = {(a.type, fold_key(k)) for a in assets for k in match_key(a)}
    out: dict[str, None] = {}
    for kind, name in dropped:
        keys = match_key({"name": name, "aliases": []})
        if not keys or not any((kind, fold_key(k)) in known for k in keys):
            out.setdefault(f"{kind} {name!r}")
    return list(out)


def run_extract_llm(sp: Screenplay, db: sqlite_utils.Database, settings: LLMOptions, *,
                    style_name: str, progress: Progress | None = None) -> ExtractionResult:
    return run(extract_llm(sp, db, settings, style_name=style_name, progress=progress))


async def distill(asset: ExtractedAsset, db: sqlite_utils.Database, settings: LLMOptions, *,
                  style_name: str, instructions: str | None = None) -> ExtractedAsset:
    """Pass 2 for one asset (`describe`): the asset with a new description and flags."""
    caller = Caller(db, settings)
    caller.preflight()
    try:
        return await _distill(caller, bound_contexts(asset), style_name, instructions)
    except LLMItemError as e:
        raise Stage5Error(f"could not describe {asset.name!r}: {e}") from None


async def suggest_conflict_fix(asset: ExtractedAsset, db: sqlite_utils.Database,
                               settings: LLMOptions, *, style_name: str) -> ConflictFix:
    """prompts/conflict.txt for one asset: a consistent description and the reasoning."""
    caller = Caller(db, settings)
    caller.preflight()
    prompt = load_prompt("conflict")
    bounded = bound_contexts(asset)
    messages = prompt.messages(
        style=" ".join(style_name.split()), name=asset.name, type=asset.type,
        description=" ".join(asset.description.split()) or "(none)",
        conflicts=" ".join(asset.conflict_details.split()) or "(not described)",
        excerpts="\n".join(f"Scene {m.scene_number}: {defuse(m.context)}"
                           for m in bounded.mentions if m.context) or "(no quotes)",
    )

    def parse(obj: dict) -> ConflictFix:
        s = ConflictFix.model_validate(obj)
        if not s.description.strip():
            raise ValueError("description: must not be empty")
        return s

    try:
        return await caller.complete_json(messages, purpose="conflict", version=prompt.version,
                                          parse=parse)
    except LLMItemError as e:
        raise Stage5Error(f"no suggestion for {asset.name!r}: {e}") from None


# ---- --dry-run -------------------------------------------------------------------------------


def _message_tokens(messages: list[dict]) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in messages)


def plan_llm(sp: Screenplay, settings: LLMOptions, *, style_name: str) -> dict:
    """What a run would send: requests, estimated tokens and cost. Calls nothing.

    Pass 2 is one request per asset, which pass 1 has not found yet: estimated from the
    script's distinct speakers and scene locations, plus half as many props.
    """
    settings.check()
    chunks = split_chunks(sp, settings.chunk_tokens)
    p1_in = sum(_message_tokens(pass1_messages(c)) for c in chunks)
    p1_out = sum(max(200, int(c.tokens * PASS1_OUTPUT_RATIO)) for c in chunks)
    speakers = {norm_name(e.name or e.text) for e in sp.elements if e.type == "character"}
    places = {norm_name(s.location or s.heading) for s in sp.scenes if (s.location or s.heading)}
    n_assets = len(speakers - {""}) + len(places - {""})
    n_assets += (len(speakers) + 1) // 2
    sample = ExtractedAsset(name="Sample Name", type="character", aliases=["Sample"],
                            mentions=[Mention(scene_number=1, context="x" * (CONTEXT_TOKENS * 4))
                                      for _ in range(MAX_CONTEXTS // 2)])
    p2_in = n_assets * _message_tokens(pass2_messages(sample, style_name))
    p2_out = n_assets * PASS2_OUTPUT_TOKENS
    tokens_in, tokens_out = p1_in + p2_in, p1_out + p2_out
    cost: float | None
    try:
        from .llm_calls import _litellm

        p, c = _litellm().cost_per_token(model=settings.model, prompt_tokens=tokens_in,
                                         completion_tokens=tokens_out)
        cost = round(float(p + c), 6)
    except Exception:
        cost = None
    return {
        "model": settings.model,
        "chunks": len(chunks),
        "requests_pass1": len(chunks),
        "requests_pass2_estimate": n_assets,
        "input_tokens_estimate": tokens_in,
        "output_tokens_estimate": tokens_out,
        "cost_usd_estimate": cost,
        "script_tokens": script_tokens(sp),
    }


# ---- the Extractor ---------------------------------------------------------------------------


class LiteLLMExtractor(Extractor):
    """Any litellm model (hosted with a key in its environment variable, or a local
    OpenAI-compatible server at api_base); every call cached and logged in `llm_calls`."""

    extractor_id = "llm"
    needs_key = True
    suggests_conflict_fixes = True
    Options = LLMOptions
    options: LLMOptions

    @property
    def model(self) -> str | None:
        return self.options.model

    @property
    def noun(self) -> str:
        return "model"

    @property
    def key_env_var(self) -> str | None:
        from .llm_calls import key_variables

        return " or ".join(key_variables(self.options.model or ""))

    def extract(self, screenplay: Screenplay, *, db: sqlite_utils.Database, style_name: str,
                progress: Progress | None = None) -> ExtractionResult:
        return run_extract_llm(screenplay, db, self.options, style_name=style_name,
                               progress=progress)

    def distill(self, asset: ExtractedAsset, *, db: sqlite_utils.Database, style_name: str,
                script: Callable[[], Screenplay], instructions: str | None = None,
                ) -> ExtractedAsset:
        return run(distill(asset, db, self.options, style_name=style_name,
                           instructions=instructions or None))

    def suggest_conflict_fix(self, asset: ExtractedAsset, *, db: sqlite_utils.Database,
                             style_name: str) -> ConflictFix:
        return run(suggest_conflict_fix(asset, db, self.options, style_name=style_name))

    def plan(self, screenplay: Screenplay, *, style_name: str) -> dict[str, Any]:
        return plan_llm(screenplay, self.options, style_name=style_name)

    def check_environment(self) -> tuple[str, bool, str]:
        from .llm_calls import _litellm

        model = self.options.model or ""
        try:
            env = _litellm().validate_environment(model=model)
        except Exception as e:  # noqa: BLE001 - a diagnosis, not an operation
            return f"LLM {model}", False, f"cannot check ({e.__class__.__name__})"
        missing = env.get("missing_keys") or []
        return (f"LLM {model}", not missing, "keys present" if not missing
                else "missing environment variable(s): " + ", ".join(missing))

    def preload(self) -> None:
        from .llm_calls import _litellm

        _litellm()
