"""Image prompts sized for the model's text encoder: the style is never the part that is cut.

Measured with the real CLIP BPE tokenizer (transformers.CLIPTokenizer on the vocabulary shipped
in prompts/clip, see tests/clip_vocab.py), on every asset of every corpus script under every
built-in style.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from stage5cli.colours import colour_name, palette_words
from stage5cli.images import clip_bpe
from stage5cli.images.budget import (
    CLIP_WINDOW,
    TextBudget,
    TokenizerCounter,
    api_budget,
    clip_budget,
    pipeline_budget,
)
from stage5cli.prompting import PromptTooLong, check_fits, compose
from stage5cli.styles import StyleCapsule, builtin_styles
from tests.conftest import CORPUS, REPO, VENDORED_CORPUS, one_line_error
from tests.helpers import TRIO, add_assets

transformers = pytest.importorskip("transformers", reason="the diffusers extra is not installed")


def real_clip_budget() -> TextBudget:
    from tests.clip_vocab import clip_tokenizer

    return TextBudget(unit="tokens", limit=CLIP_WINDOW, encoder="clip (real tokenizer)",
                      counter=TokenizerCounter(clip_tokenizer()))


@functools.cache
def corpus_assets(folder: Path) -> list[tuple[str, str, str, str]]:
    from stage5cli.extract.builtin import extract_builtin
    from stage5cli.screenplay import load

    out = []
    for path in sorted(folder.glob("*.fountain")):
        for a in extract_builtin(load(path)):
            out.append((path.name, a.name, a.type, a.description))
    return out


def _check_corpus(folder: Path) -> int:
    # composed with the shipped counter (what the api backend and style import use), then
    # every prompt is measured by the real transformers CLIPTokenizer
    budget = clip_budget()
    tok = real_clip_budget().counter
    assets = corpus_assets(folder)
    assert len(assets) > 20
    fails = []
    for style in builtin_styles().values():
        for script, name, kind, desc in assets:
            c = compose(style, name=name, asset_type=kind, description=desc, budget=budget)
            n = tok.count(c.text)
            if n > CLIP_WINDOW:
                fails.append(f"{style.id} {script} {name}: {n} tokens")
            missing = [t for t in c.style_terms if t not in c.text]
            if missing:
                fails.append(f"{style.id} {script} {name}: lost {missing}")
            if "#" in c.text:
                fails.append(f"{style.id} {script} {name}: hex sent")
            # the shipped counter (no transformers) counts exactly what the tokenizer counts
            if clip_bpe.count(c.text) != n or c.count != n:
                fails.append(f"{style.id} {script} {name}: clip_bpe {c.count} != {n}")
            assert c.limit == CLIP_WINDOW
    assert not fails, fails[:10]
    return len(assets)


def test_every_vendored_corpus_asset_fits_the_clip_window_with_every_style_term():
    assert _check_corpus(VENDORED_CORPUS) > 0


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside this clone")
def test_every_shared_corpus_asset_fits_the_clip_window_with_every_style_term():
    assert _check_corpus(CORPUS) > 300


def test_style_terms_are_the_capsule_terms():
    noir = builtin_styles()["film-noir"]
    c = compose(noir, name="MARA", asset_type="character", description="A tall woman.",
                budget=real_clip_budget())
    for term in ("1940s film noir still of", "black and white", "hard chiaroscuro",
                 noir.lighting, noir.camera, noir.asset_types.character):
        assert term in c.text


def test_subject_first_condensed_palette_as_colour_words():
    still = builtin_styles()["film-still"]
    desc = ("A woman in her sixties with a silver braid. She wears a long blue wool coat, "
            "patched at the elbows. She is thinking about her brother. The weather is cold.")
    c = compose(still, name="MARA", asset_type="character", description=desc,
                budget=real_clip_budget())
    head = still.prompt.split("{subject}")[0]
    assert c.text.startswith(head + "MARA, character, A woman in her sixties")
    assert c.count <= CLIP_WINDOW
    assert "thinking about her brother" not in c.text  # not visual, left out
    assert any("brother" in d for d in c.dropped)
    # no limit: the whole description and every colour, as words
    full = compose(still, name="MARA", asset_type="character", description=desc)
    assert "patched at the elbows" in full.text and full.dropped == []
    assert "colour palette " + ", ".join(palette_words(still.palette)) in full.text
    assert "#" not in full.text


def test_colour_names_are_nearest_named_colours():
    assert colour_name("#000000") == "black"
    assert colour_name("#ffffff") == "white"
    table = json.loads((REPO / "prompts" / "colour_names.json").read_text())["colours"]
    assert colour_name(table["dark teal"]) == "dark teal"
    assert colour_name("#e60302") == "red" == colour_name(table["red"])  # a near shade
    assert colour_name("#ff0000") == "fire engine red"
    assert not any(bad in " ".join(table) for bad in ("vomit", "puke", "poop"))
    assert palette_words(["#000000", "#010101", "#ffffff"]) == ["black", "white"]


def test_a_4000_character_description_fits_and_records_what_was_dropped():
    desc = " ".join(f"Clause {i} has a red coat and a brass lamp." for i in range(90))[:4000]
    for style in builtin_styles().values():
        c = compose(style, name="THE KEEPER", asset_type="character", description=desc,
                    budget=real_clip_budget())
        assert c.count <= CLIP_WINDOW
        assert all(t in c.text for t in c.style_terms)
        assert len(c.dropped) > 50


def test_a_long_name_is_cut_before_the_style():
    noir = builtin_styles()["film-noir"]
    name = " ".join(["VERYLONGNAME"] * 12)
    c = compose(noir, name=name, asset_type="prop", description="", budget=real_clip_budget())
    assert c.count <= CLIP_WINDOW and all(t in c.text for t in c.style_terms)
    assert "prop" in c.dropped


def _capsule(**over) -> StyleCapsule:
    body = builtin_styles()["film-noir"].model_dump(mode="json")
    body.update(id="too-long", **over)
    return StyleCapsule.model_validate(body)


def test_a_style_whose_own_terms_overflow_is_refused_naming_the_window():
    fat = _capsule(lighting=", ".join(["dramatic volumetric god rays"] * 12))
    with pytest.raises(PromptTooLong) as e:
        check_fits(fat, clip_budget())
    assert "77-token window" in str(e.value)
    with pytest.raises(PromptTooLong, match="77-token window"):
        compose(fat, name="X", asset_type="prop", description="", budget=clip_budget())
    # a long-window model takes it
    compose(fat, name="X", asset_type="prop", description="", budget=api_budget("openai/dall-e-3"))


def test_backend_budgets():
    from stage5cli.images import get_backend

    assert get_backend("placeholder").text_budget().limit is None
    d3 = get_backend("api", model="openai/dall-e-3").text_budget()
    assert (d3.unit, d3.limit) == ("characters", 4000)
    d2 = get_backend("api", model="openai/dall-e-2").text_budget()
    assert (d2.unit, d2.limit) == ("characters", 1000)
    other = get_backend("api", model="openai/local-sd").text_budget()
    assert (other.unit, other.limit) == ("tokens", CLIP_WINDOW)  # unknown: the strictest
    c = compose(builtin_styles()["anime"], name="MARA", asset_type="character",
                description="x " * 1900, budget=d2)
    assert len(c.text) <= 1000 and c.unit == "characters"


def test_pipeline_budget_clip_sdxl_and_t5():
    from transformers import T5TokenizerFast  # noqa: F401 (the class name is what counts)

    from tests.clip_vocab import clip_tokenizer

    clip = clip_tokenizer()
    b = pipeline_budget({"tokenizer": clip, "tokenizer_2": clip})
    assert (b.limit, b.long_prompt, b.encoder) == (77, None, "clip (tokenizer)")
    assert pipeline_budget({}) is None

    class T5TokenizerStandIn:  # counted by characters; the class name marks a T5 encoder
        model_max_length = 512

        def __call__(self, text, **kw):
            return {"input_ids": list(range(len(text.split()) + 1))}

    t5 = T5TokenizerStandIn()
    b = pipeline_budget({"tokenizer": clip, "tokenizer_2": clip, "tokenizer_3": t5},
                        max_sequence_length=256)
    assert (b.limit, b.long_prompt) == (256, "t5")
    assert "first 77 tokens" in b.notes[0]
    # a long window takes the whole description
    desc = "A woman in her sixties with a silver braid, a long blue coat, patched at the elbows."
    c = compose(builtin_styles()["film-noir"], name="MARA", asset_type="character",
                description=desc, budget=b)
    assert c.dropped == [] and c.long_prompt == "t5" and "patched at the elbows" in c.text


# ---- the CLI -------------------------------------------------------------------------------


def _big_style(tmp_path: Path) -> Path:
    import yaml

    body = builtin_styles()["film-noir"].model_dump(mode="json")
    body.update(id="overlong", lighting=", ".join(["dramatic volumetric god rays"] * 12))
    path = tmp_path / "overlong.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def test_style_import_refuses_a_capsule_that_cannot_fit_clip(styled, cli, tmp_path):
    from tests.conftest import table_dump

    before = table_dump(styled / "stage5.db")
    r = cli("style", "import", _big_style(tmp_path), "-p", styled)
    assert r.exit_code == 2
    line = one_line_error(r)
    assert "overlong.yaml" in line and "77-token window" in line
    assert table_dump(styled / "stage5.db") == before


def test_generate_records_the_prompt_sent_in_the_job_and_the_png(styled, cli):
    from stage5cli.images.png import read_png_metadata

    add_assets(styled, TRIO)
    # an api model with a documented limit: the record says characters / 1000
    r = cli("generate", "--all", "--dry-run", "--json", "--backend", "api", "--model",
            "openai/dall-e-2", "-p", styled)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["prompt_budget"]["limit"] == 1000
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    jobs = json.loads(cli("jobs", "--json", "-p", styled).stdout)
    for j in jobs:
        rec = j["metadata"]["prompt"]
        assert rec["prompt_sent"] == j["prompt"] and "#" not in j["prompt"]
        assert {"count", "limit", "encoder", "dropped", "unit"} <= set(rec)
        meta = read_png_metadata(styled / j["image_path"])["stage5"]
        assert meta["prompt"]["prompt_sent"] == j["prompt"]
        assert len(meta["recipe_sha256"]) == 64


def test_readme_documents_the_budget():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for phrase in ("77-token", "--allow-placeholder", "--stale", "--batch-size", "colour words"):
        assert phrase in text, phrase
