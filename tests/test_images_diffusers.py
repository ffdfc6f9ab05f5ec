"""The diffusers backend, end to end on a tiny random-weight pipeline built here (no downloads)."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

from stage5cli.errors import UsageError
from stage5cli.images import SIZES, DiffusersBackend, ImageRequest, get_backend
from stage5cli.images.png import a1111_parameters, read_png_metadata, write_png

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")


def make_request(**over) -> ImageRequest:
    fields = dict(
        key="1",
        asset_id=3,
        asset_name="Brass Pocket Watch",
        asset_type="prop",
        description="An engraved brass pocket watch.",
        prompt="an engraved brass pocket watch, film noir",
        negative_prompt="blurry",
        width=64,
        height=64,
        seed=7,
        steps=2,
        guidance=5.0,
        sampler="euler",
        palette=[],
        style_id="noir",
        style_name="Neo-noir",
        style_sha256="cd" * 32,
    )
    fields.update(over)
    return ImageRequest(**fields)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Two xdist workers on a 2-core machine, each with a multi-threaded torch, oversubscribe
    the CPU (measured 5-10x slower); one thread per worker keeps the module fast."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backend(tiny_model):
    b = get_backend("diffusers", model=str(tiny_model))
    yield b
    b.close()


def pixels(image) -> bytes:
    return image.tobytes()


def test_end_to_end_loads_once_and_returns_exact_sizes(tiny_model):
    backend = get_backend("diffusers", model=str(tiny_model), device="cpu")
    reqs = [
        make_request(key="a"),
        make_request(key="b", width=96, height=64, seed=8),
        make_request(key="c", width=100, height=60),  # not a multiple of the VAE factor
    ]
    results = list(backend.generate(reqs))
    assert [r.key for r in results] == ["a", "b", "c"]
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.image.size for r in results] == [(64, 64), (96, 64), (100, 60)]
    assert results[2].info["generated_size"] == [104, 64]
    assert results[0].info["device"] == "cpu" and results[0].cost_usd == 0.0
    assert backend.load_count == 1
    list(backend.generate([make_request(key="d")]))  # the same instance reuses its pipeline
    assert backend.load_count == 1
    assert backend.pipe.safety_checker is None
    assert next(backend.pipe.unet.parameters()).dtype.__repr__() == "torch.float32"


def test_same_seed_same_pixels_different_seed_different(backend, tiny_model):
    a, b, c = backend.generate([make_request(), make_request(key="2"), make_request(seed=8)])
    assert pixels(a.image) == pixels(b.image)
    assert pixels(a.image) != pixels(c.image)
    fresh = get_backend("diffusers", model=str(tiny_model))
    [d] = fresh.generate([make_request()])
    assert pixels(d.image) == pixels(a.image)


def test_prompt_negative_prompt_and_guidance_reach_the_pipeline(backend):
    base, other_prompt, no_negative, other_cfg = backend.generate(
        [
            make_request(),
            make_request(prompt="a rusty anchor"),
            make_request(negative_prompt=""),
            make_request(guidance=9.0),
        ]
    )
    assert pixels(base.image) != pixels(other_prompt.image)
    assert pixels(base.image) != pixels(no_negative.image)
    assert pixels(base.image) != pixels(other_cfg.image)


def test_real_table_size_character(backend):
    w, h = SIZES["character"]
    t0 = time.perf_counter()
    [result] = backend.generate([make_request(asset_type="character", width=w, height=h)])
    assert result.ok, result.error
    assert result.image.size == (512, 768)
    assert "generated_size" not in result.info
    assert time.perf_counter() - t0 < 20


@pytest.mark.slow
def test_real_table_sizes_all_types(backend):
    reqs = [make_request(key=t, asset_type=t, width=w, height=h) for t, (w, h) in SIZES.items()]
    results = list(backend.generate(reqs))
    assert [r.image.size for r in results] == list(SIZES.values())


def test_samplers_map_to_schedulers(backend):
    ddim, karras, unknown, default = backend.generate(
        [
            make_request(sampler="DDIM"),
            make_request(sampler="DPM++ 2M Karras"),
            make_request(sampler="warp-drive"),
            make_request(sampler=""),
        ]
    )
    assert ddim.info["scheduler"] == "DDIMScheduler"
    assert karras.info["scheduler"] == "DPMSolverMultistepScheduler"
    assert backend._schedulers["dpmpp_2m_karras"].config.use_karras_sigmas is True
    assert unknown.ok and "warp-drive" in unknown.info["sampler_note"]
    assert default.info["scheduler"] == "EulerDiscreteScheduler"
    assert pixels(ddim.image) != pixels(default.image)


def test_failing_request_does_not_stop_the_batch(backend):
    results = list(
        backend.generate(
            [make_request(key="ok1"), make_request(key="bad", height=-5), make_request(key="ok2")]
        )
    )
    assert [r.ok for r in results] == [True, False, True]
    assert "size" in results[1].error


def test_png_metadata_from_a_diffusers_image(backend, tmp_path):
    req = make_request()
    [result] = backend.generate([req])
    path = tmp_path / "3-abc.png"
    write_png(
        result.image,
        path,
        parameters=a1111_parameters(req, backend.model_name()),
        stage5={
            "asset_id": req.asset_id,
            "style_id": req.style_id,
            "style_sha256": req.style_sha256,
        },
    )
    meta = read_png_metadata(path)
    assert meta["stage5"]["asset_id"] == 3
    assert f"Model: {backend.model_name()}" in meta["parameters"].replace('"', "")


# ---- check(): one line naming the fix --------------------------------------------------------


def test_no_model_names_the_flag_and_the_variable(monkeypatch):
    monkeypatch.delenv("STAGE5_DIFFUSERS_MODEL", raising=False)
    with pytest.raises(UsageError) as err:
        get_backend("diffusers").check()
    assert "--model" in str(err.value) and "STAGE5_DIFFUSERS_MODEL" in str(err.value)


def test_model_from_the_environment(monkeypatch, tiny_model):
    monkeypatch.setenv("STAGE5_DIFFUSERS_MODEL", str(tiny_model))
    backend = get_backend("diffusers")
    backend.check()
    assert backend.model_name() == str(tiny_model)


def test_missing_folder_and_non_model_folder(tmp_path):
    with pytest.raises(UsageError) as err:
        get_backend("diffusers", model=str(tmp_path / "nope")).check()
    assert "not found" in str(err.value) and "--model" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as err:
        get_backend("diffusers", model=str(tmp_path / "empty")).check()
    assert "model_index.json" in str(err.value)


def test_broken_model_folder_fails_at_setup_with_one_line(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "unet": ["diffusers", "UNet2DConditionModel"],
            }
        )
    )
    backend = get_backend("diffusers", model=str(folder))
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as err:
        list(backend.generate([make_request()]))
    assert "cannot load diffusers model" in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - t0 < 10


def test_uncached_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = get_backend("diffusers", model="stage5-tests/no-such-model")
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as err:
        list(backend.generate([make_request()]))
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "stage5-tests/no-such-model" in msg
    assert time.perf_counter() - t0 < 5


def test_uncached_hub_id_without_network_fails_fast(monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    backend = get_backend("diffusers", model="stage5-tests/no-such-model")
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as err:
        list(backend.generate([make_request()]))
    msg = str(err.value)
    assert "cannot be reached" in msg and "--model" in msg and "\n" not in msg
    assert time.perf_counter() - t0 < 5


def test_missing_extra_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "diffusers" else real(name, *a),
    )
    with pytest.raises(UsageError) as err:
        get_backend("diffusers", model="/models/sd").check()
    assert "pip install 'stage5[diffusers]'" in str(err.value)


def test_options():
    assert DiffusersBackend.Options(dtype="float16").dtype == "float16"
    with pytest.raises(UsageError):
        get_backend("diffusers", dtype="int4")
    assert get_backend("diffusers", model="x").estimate_cost(make_request()) == 0.0


# ---- the prompt budget and batched generation ------------------------------------------------


def test_budget_comes_from_the_pipeline_tokenizer(tiny_model):
    from stage5cli.images.budget import CLIP_WINDOW

    fresh = get_backend("diffusers", model=str(tiny_model))
    before = fresh.text_budget()  # loads the tokenizer alone, not the pipeline
    assert fresh.pipe is None and fresh.load_count == 0
    assert (before.unit, before.limit, before.long_prompt) == ("tokens", CLIP_WINDOW, None)
    assert before.encoder == "clip (tokenizer)"
    assert before.count("a photo of a cat") == 7  # <|startoftext|> a photo of a cat <|endoftext|>


def test_a_pipeline_folder_without_a_tokenizer_is_refused(tiny_model, tmp_path):
    import shutil

    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model, broken)
    shutil.rmtree(broken / "tokenizer")
    index = json.loads((broken / "model_index.json").read_text())
    index["tokenizer"] = [None, None]
    (broken / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UsageError, match="has no tokenizer"):
        get_backend("diffusers", model=str(broken)).text_budget()
    index.pop("tokenizer")
    (broken / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UsageError, match="has no tokenizer"):
        get_backend("diffusers", model=str(broken)).text_budget()


def test_batched_generation_one_call_per_chunk_seeds_per_image(tiny_model):
    import numpy as np

    reqs = [make_request(key=str(i), seed=100 + i, prompt=f"a brass watch number {i}")
            for i in range(3)]
    reqs.append(make_request(key="big", width=72, height=64, seed=5))  # another size
    batched = get_backend("diffusers", model=str(tiny_model), batch_size=3, device="cpu")
    calls = []
    real = batched._call

    def spy(rs):
        calls.append(len(rs))
        return real(rs)

    batched._call = spy
    out = list(batched.generate(reqs))
    assert calls == [3, 1] and batched.load_count == 1
    assert [r.key for r in out] == ["0", "1", "2", "big"] and all(r.ok for r in out)
    assert [r.info.get("batch") for r in out] == [3, 3, 3, None]
    single = get_backend("diffusers", model=str(tiny_model), batch_size=1, device="cpu")
    alone = list(single.generate(reqs[:3]))
    for a, b in zip(out[:3], alone, strict=True):
        diff = np.abs(np.asarray(a.image, dtype=float) - np.asarray(b.image, dtype=float)).mean()
        assert diff < 2.0  # the same seed gives the same image, batched or not
    assert pixels(out[0].image) != pixels(out[1].image)  # each image has its own seed


def test_batch_size_default_from_the_device(tiny_model):
    b = get_backend("diffusers", model=str(tiny_model))
    b.device = "cpu"
    assert b.batch_size() == 1
    b.device = "cuda"
    assert b.batch_size() == 4
    assert get_backend("diffusers", model=str(tiny_model), batch_size=6).batch_size() == 6
