"""The image-backend registry, the shared base, PNG writing/metadata and the placeholder backend."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stage5cli.errors import Stage5Error, UsageError
from stage5cli.images import (
    BACKENDS,
    SIZES,
    ImageBackend,
    ImageRequest,
    ImageResult,
    PlaceholderBackend,
    get_backend,
    size_for,
)
from stage5cli.images.base import fit_exact, one_line, scrub
from stage5cli.images.placeholder import parse_hex, wrap
from stage5cli.images.png import (
    a1111_parameters,
    encode_png,
    parse_a1111_parameters,
    read_png_metadata,
    remove_stale_temp_files,
    write_png,
)

PALETTE = ["#1b263b", "#415a77", "#778da9", "#e0e1dd", "#c9a227"]


def make_request(**over) -> ImageRequest:
    asset_type = over.pop("asset_type", "character")
    w, h = SIZES[asset_type]
    fields = dict(
        key="1",
        asset_id=7,
        asset_name="Detective Mara Okonkwo",
        asset_type=asset_type,
        description="A tall woman in a rain-soaked trench coat with a scar over one eyebrow.",
        prompt="film noir still, a tall woman in a trench coat, rain",
        negative_prompt="blurry, lowres",
        width=w,
        height=h,
        seed=1234,
        steps=20,
        guidance=7.5,
        sampler="euler_a",
        palette=list(PALETTE),
        style_id="noir",
        style_name="Neo-noir",
        style_sha256="ab" * 32,
    )
    fields.update(over)
    return ImageRequest(**fields)


def render(req: ImageRequest):
    [result] = list(get_backend("placeholder").generate([req]))
    assert result.ok, result.error
    return result.image


# ---- registry --------------------------------------------------------------------------------


def test_registry_has_the_three_backends_with_capabilities():
    assert set(BACKENDS) == {"placeholder", "diffusers", "api"}
    for name, cls in BACKENDS.items():
        assert cls.backend_id == name
        assert issubclass(cls, ImageBackend)
        assert issubclass(cls.Options, ImageBackend.Options)
    assert BACKENDS["api"].needs_key and BACKENDS["api"].key_env_var
    assert not BACKENDS["placeholder"].needs_key and not BACKENDS["diffusers"].needs_key


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(UsageError) as err:
        get_backend("midjourney")
    msg = str(err.value)
    assert "midjourney" in msg and all(name in msg for name in BACKENDS)
    assert "\n" not in msg


def test_options_are_validated_and_none_means_default():
    backend = get_backend("placeholder", model=None, api_base=None, timeout=None)
    assert backend.options.timeout == 120.0
    with pytest.raises(UsageError) as err:
        get_backend("placeholder", colour="red")
    assert "colour" in str(err.value)
    with pytest.raises(UsageError) as err:
        get_backend("api", model="openai/x", size="big")
    assert "size" in str(err.value)


def test_size_table_and_size_for():
    assert SIZES == {"character": (512, 768), "prop": (512, 512), "location": (1024, 576)}
    assert size_for("prop") == (512, 512)
    with pytest.raises(UsageError):
        size_for("vehicle")


def test_importing_the_package_stays_light():
    code = (
        "import sys, stage5cli.images; "
        "print([m for m in ('PIL', 'torch', 'diffusers', 'litellm', 'transformers', 'httpx') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- placeholder -----------------------------------------------------------------------------


@pytest.mark.parametrize("asset_type", list(SIZES))
def test_placeholder_exact_size_per_type(asset_type):
    image = render(make_request(asset_type=asset_type))
    assert image.size == SIZES[asset_type]
    assert image.mode == "RGB"


def test_placeholder_shows_the_palette_and_text():
    req = make_request(asset_type="prop")
    image = render(req)
    w, h = image.size
    # the swatch band: first and last palette colours at the bottom corners
    assert image.getpixel((2, h - 2)) == parse_hex(PALETTE[0])
    assert image.getpixel((w - 3, h - 2)) == parse_hex(PALETTE[-1])
    # text is drawn: the title area changes when only the name changes
    other = render(make_request(asset_type="prop", asset_name="Brass Pocket Watch"))
    title_box = (0, int(h * 0.12), w, int(h * 0.35))
    assert image.crop(title_box).tobytes() != other.crop(title_box).tobytes()
    # and it is not a flat card: many distinct colours (antialiased glyphs, gradient)
    assert len(image.getcolors(maxcolors=100000) or []) > 50


def test_placeholder_is_deterministic_to_the_byte(tmp_path):
    req = make_request()
    a = encode_png(render(req), parameters="p", stage5={"asset_id": 7})
    b = encode_png(render(make_request()), parameters="p", stage5={"asset_id": 7})
    assert a == b
    c = encode_png(render(make_request(seed=1235)), parameters="p", stage5={"asset_id": 7})
    assert c != a


def test_placeholder_deterministic_across_processes():
    root = str(Path(__file__).resolve().parents[1])
    code = (
        f"import hashlib, sys; sys.path.insert(0, {root!r}); "
        "from tests.test_images_placeholder import make_request, render; "
        "print(hashlib.sha256(render(make_request()).tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(render(make_request()).tobytes()).hexdigest()


@pytest.mark.parametrize(
    "over",
    [
        {"palette": []},
        {"palette": ["not-a-colour", "#12"]},
        {"palette": ["#abc"]},
        {"description": ""},
        {"asset_name": ""},
        {"asset_name": "Supercalifragilisticexpialidocious-Extraordinaire " * 4},
        {"description": "word " * 2000},
        {"asset_name": "Zoë Ängström — 東京 🚀", "description": "naïve café «quotes»"},
        {"width": 64, "height": 40},
    ],
)
def test_placeholder_handles_odd_input(over):
    req = make_request(**over)
    image = render(req)
    assert image.size == (req.width, req.height)


def test_wrap_fits_width_and_marks_truncation():
    from PIL import ImageFont

    font = ImageFont.load_default(size=20)
    lines = wrap("one two three four five six seven eight nine ten " * 5, font, 150, 3)
    assert len(lines) == 3
    assert all(font.getlength(line) <= 150 for line in lines)
    assert lines[-1].endswith("…")
    assert wrap("short", font, 150, 3) == ["short"]


def test_placeholder_is_fast():
    backend = get_backend("placeholder")
    reqs = [make_request(key=str(i), asset_type=t, seed=i) for i, t in enumerate(SIZES)] * 5
    t0 = time.perf_counter()
    results = list(backend.generate(reqs))
    elapsed = time.perf_counter() - t0
    assert all(r.ok for r in results)
    assert len(results) / elapsed > 10  # measured ~150/s; generous for slow CI machines


def test_placeholder_cost_and_model_name():
    backend = get_backend("placeholder")
    assert backend.estimate_cost(make_request()) == 0.0
    assert backend.model_name().startswith("placeholder")


# ---- the shared base: isolation, exact size, one-line errors -----------------------------------


class _Flaky(PlaceholderBackend):
    """A placeholder that fails for one key and returns a wrong size for another."""

    setups = 0

    def setup(self) -> None:
        type(self).setups += 1

    def generate_one(self, req):
        if req.key == "boom":
            raise RuntimeError("GPU on fire, api_key=sk-abcdef1234567890")
        result = super().generate_one(req)
        if req.key == "small":
            result.image = result.image.resize((100, 50))
        return result


def test_one_failure_does_not_stop_the_batch_and_sizes_are_forced():
    backend = _Flaky()
    reqs = [
        make_request(key="a"),
        make_request(key="boom"),
        make_request(key="bad-size", width=0),
        make_request(key="small", asset_type="location"),
        make_request(key="z"),
    ]
    results = {r.key: r for r in backend.generate(reqs)}
    assert list(results) == ["a", "boom", "bad-size", "small", "z"]
    assert results["a"].ok and results["z"].ok
    assert not results["boom"].ok and results["boom"].image is None
    assert "GPU on fire" in results["boom"].error and "sk-abcdef" not in results["boom"].error
    assert "size" in results["bad-size"].error
    assert results["small"].image.size == (1024, 576)
    assert results["small"].info["resized"] is True
    assert results["small"].info["provider_size"] == [100, 50]
    # heavy setup happens once per instance, however many requests
    list(backend.generate([make_request(key="b")]))
    assert _Flaky.setups == 1


def test_fit_exact_covers_then_centre_crops():
    from PIL import Image

    # 300x100: red | green | blue thirds; into 100x100 keeps the green middle
    img = Image.new("RGB", (300, 100), "red")
    img.paste((0, 255, 0), (100, 0, 200, 100))
    img.paste((0, 0, 255), (200, 0, 300, 100))
    out = fit_exact(img, 100, 100)
    assert out.size == (100, 100)
    assert out.getpixel((50, 50)) == (0, 255, 0)
    assert fit_exact(Image.new("RGBA", (10, 10)), 20, 30).size == (20, 30)


def test_scrub_removes_keys(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "plain-looking-value-42")
    text = (
        "auth failed for sk-proj-ABCDEF1234567890 with Bearer abc.def.ghi123 "
        "api_key=hunter2hunter2 and plain-looking-value-42 at https://x/y?key=AIzaSyXXXXXXXXXX"
    )
    out = scrub(text)
    for secret in (
        "sk-proj-ABCDEF",
        "abc.def.ghi123",
        "hunter2",
        "plain-looking-value-42",
        "AIzaSy",
    ):
        assert secret not in out
    assert "auth failed" in out
    assert "\n" not in one_line(RuntimeError("a\nb\n c"))


# ---- PNG writing and metadata ----------------------------------------------------------------


def test_a1111_parameters_round_trip():
    req = make_request(
        prompt="a woman, trench coat: rain\nsecond line",
        negative_prompt="blurry, text",
        sampler="DPM++ 2M Karras",
    )
    text = a1111_parameters(req, "sd-turbo, fp16")
    assert text.splitlines()[0] == "a woman, trench coat: rain"
    assert "Negative prompt: blurry, text" in text
    last = text.splitlines()[-1]
    assert last.startswith("Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234")
    assert "Size: 512x768" in last and 'Model: "sd-turbo, fp16"' in last
    parsed = parse_a1111_parameters(text)
    assert parsed["prompt"] == req.prompt
    assert parsed["negative_prompt"] == "blurry, text"
    assert parsed["Seed"] == "1234" and parsed["Size"] == "512x768"
    assert parsed["Model"] == "sd-turbo, fp16"
    no_neg = a1111_parameters(make_request(negative_prompt=""), None)
    assert "Negative prompt" not in no_neg and "Model:" not in no_neg
    assert parse_a1111_parameters("just a prompt\non two lines") == {
        "prompt": "just a prompt\non two lines",
        "negative_prompt": "",
    }


def test_write_png_is_atomic_and_carries_metadata(tmp_path):
    req = make_request(prompt="café in Tōkyō, night")  # non-Latin-1 text: iTXt
    image = render(req)
    stage5 = {
        "asset_id": 7,
        "style_id": "noir",
        "style_sha256": "ab" * 32,
        "backend": "placeholder",
    }
    path = tmp_path / "images" / "7-abc123.png"
    digest = write_png(
        image, path, parameters=a1111_parameters(req, "placeholder-1"), stage5=stage5
    )
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    meta = read_png_metadata(path)
    assert meta["stage5"] == stage5
    assert meta["parameters"].startswith("café in Tōkyō, night")
    assert (meta["width"], meta["height"]) == (512, 768)
    assert meta["sha256"] == digest
    # same input, same bytes (and the same digest)
    again = tmp_path / "again.png"
    assert (
        write_png(image, again, parameters=a1111_parameters(req, "placeholder-1"), stage5=stage5)
        == digest
    )


def test_write_png_failure_leaves_nothing_half_written(tmp_path, monkeypatch):
    image = render(make_request(asset_type="prop"))
    path = tmp_path / "7-abc.png"
    write_png(image, path, parameters="old", stage5={"v": 1})
    before = path.read_bytes()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(Stage5Error) as err:
        write_png(image, path, parameters="new", stage5={"v": 2})
    assert "No space left on device" in str(err.value) and str(path) in str(err.value)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old image is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # temp file removed


def test_write_png_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "images"
    blocker.write_text("a file where the folder should be")
    image = render(make_request(asset_type="prop", width=32, height=32))
    with pytest.raises(Stage5Error) as err:
        write_png(image, blocker / "1-x.png", parameters="p", stage5={})
    assert "cannot write image" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions"
)
def test_write_png_read_only_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(Stage5Error):
            write_png(render(make_request()), folder / "1.png", parameters="p", stage5={})
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_remove_stale_temp_files(tmp_path):
    # stage5's temp names carry mkstemp's 8 random characters (files.write_chunks)
    dead = tmp_path / ".7-abc.png.999999999.k2j3x7zq.tmp"  # no such pid
    mine = tmp_path / f".8-def.png.{os.getpid()}.q9w8a1b2.tmp"
    keep = tmp_path / "7-abc.png"
    lookalike = tmp_path / ".notes.999999999.k2j3.tmp"  # not stage5's pattern: the user's
    for p in (dead, mine, keep, lookalike):
        p.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == 1
    assert not dead.exists() and mine.exists() and keep.exists() and lookalike.exists()
    assert remove_stale_temp_files(tmp_path / "missing") == 0


def test_read_png_metadata_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(Stage5Error):
        read_png_metadata(bad)
    with pytest.raises(Stage5Error):
        read_png_metadata(tmp_path / "missing.png")


def test_image_result_ok_property():
    assert not ImageResult("k", None).ok
    assert not ImageResult("k", None, error="x").ok


def test_the_bundled_font_draws_every_letter():
    """17.10: placeholder cards draw INÉS ÆØÅ ß (and Greek, Cyrillic) with real glyphs, no tofu:
    every glyph's mask differs from the font's .notdef glyph (what a missing letter renders as),
    and the cmap covers each character."""
    from PIL import ImageFont

    from stage5cli.images import placeholder

    assert placeholder.FONT.is_file() and placeholder.FONT.stat().st_size <= 800_000
    font = placeholder._font(40)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.path == str(placeholder.FONT)
    text = "INÉS ÆØÅ ß CAFÉ NOIR Ψυχή Жизнь"
    try:
        from fontTools.ttLib import TTFont
    except ImportError:  # fontTools is optional here: the mask comparison below still runs
        pass
    else:
        cmap = TTFont(str(placeholder.FONT)).getBestCmap()
        missing = [c for c in text if c != " " and ord(c) not in cmap]
        assert not missing, missing

    def mask(ch: str) -> bytes:
        return bytes(font.getmask(ch))

    notdef = mask("\U000E0FFF")  # a code point no font has: the .notdef box
    tofu = [c for c in text if c != " " and mask(c) == notdef]
    assert not tofu, tofu
    assert mask("É") != mask("E")  # the accent is drawn
