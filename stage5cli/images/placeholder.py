"""The offline placeholder backend: a readable, deterministic card at the exact size.

The card shows the style palette (gradient background and a swatch band), the asset name in
large type, its type and a wrapped excerpt of its description. The only variation comes from
`req.seed` (decorative shapes), so the same request always gives byte-identical PNG files.
"""

from __future__ import annotations

import colorsys
import functools
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

from stage5cli.images.base import ImageBackend, ImageRequest, ImageResult

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont, ImageFont

RENDERER_VERSION = "placeholder-1"  # bump when the drawing changes (recorded as the model)
_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
RGB = tuple[int, int, int]


def parse_hex(colour: str) -> RGB | None:
    m = _HEX.match(colour.strip()) if isinstance(colour, str) else None
    if not m:
        return None
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _seed_palette(seed: int) -> list[RGB]:
    rng = random.Random(seed)
    hue = rng.random()
    out = []
    for i, (s, v) in enumerate([(0.45, 0.30), (0.35, 0.55), (0.55, 0.80), (0.25, 0.92)]):
        r, g, b = colorsys.hsv_to_rgb((hue + 0.08 * i) % 1.0, s, v)
        out.append((round(r * 255), round(g * 255), round(b * 255)))
    return out


def _luma(c: RGB) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


FONT = Path(__file__).resolve().parent / "fonts" / "DejaVuSans.ttf"  # full Latin, Greek, Cyrillic


@functools.lru_cache(maxsize=32)
def _font(size: int) -> FreeTypeFont | ImageFont:
    """The bundled DejaVu Sans (fonts/SOURCE.md); Pillow's default font only if it is missing."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(FONT), size=size)
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: bitmap font
        return ImageFont.load_default()


def _text_width(font, text: str) -> float:
    return font.getlength(text)


def _cut(font, word: str, max_width: float) -> str:
    if _text_width(font, word) <= max_width:
        return word
    while len(word) > 1 and _text_width(font, word + "…") > max_width:
        word = word[:-1]
    return word + "…"


def wrap(text: str, font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap by pixel width; the last line ends with an ellipsis when text remains."""
    words = text.split()
    lines: list[str] = []
    cur, used = "", 0
    for word in words:
        trial = f"{cur} {word}" if cur else word
        if _text_width(font, trial) <= max_width:
            cur, used = trial, used + 1
            continue
        if cur:
            lines.append(cur)
            cur = ""
            if len(lines) == max_lines:
                break
        if _text_width(font, word) <= max_width:
            cur = word
        else:
            lines.append(_cut(font, word, max_width))
        used += 1
        if len(lines) == max_lines:
            break
    if cur and len(lines) < max_lines:
        lines.append(cur)
    if used < len(words) and lines:
        last = lines[-1].rstrip(".,;:… ")
        while last and _text_width(font, last + " …") > max_width:
            last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
        lines[-1] = (last + " …").strip()
    return lines


def excerpt(description: str, limit: int = 220) -> str:
    text = " ".join((description or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(".,;: ") + " …"


def render(req: ImageRequest):
    """Draw the placeholder card for `req` (a PIL RGB image of exactly width x height)."""
    from PIL import Image, ImageDraw

    w, h = req.width, req.height
    palette = [c for c in (parse_hex(p) for p in req.palette or []) if c is not None]
    if not palette:
        palette = _seed_palette(req.seed)
    by_luma = sorted(palette, key=_luma)
    dark, light = by_luma[0], by_luma[-1]
    top = dark if len(palette) == 1 else _mix(dark, palette[0], 0.5)
    bottom = _mix(dark, light, 0.55) if len(palette) > 1 else _mix(dark, (255, 255, 255), 0.35)

    # background: vertical gradient between two palette colours
    mask = Image.linear_gradient("L").resize((w, h))
    img = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), mask)
    draw = ImageDraw.Draw(img)

    # decoration from the seed: a few low-contrast rings and bars in palette colours
    rng = random.Random(req.seed)
    base = min(w, h)
    for _ in range(5):
        colour = _mix(_mix(top, bottom, 0.5), rng.choice(palette), 0.35)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.15, 0.45) * base
        if rng.random() < 0.6:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(2, base // 60))
        else:
            draw.rectangle((cx - r, cy - r / 6, cx + r, cy + r / 6), fill=colour)

    # palette band along the bottom
    band = max(8, h // 14)
    n = len(palette)
    for i, colour in enumerate(palette):
        draw.rectangle((w * i // n, h - band, w * (i + 1) // n, h), fill=colour)

    # text panel
    margin = max(12, base // 16)
    panel_rgb = _mix(dark, (0, 0, 0), 0.45)
    fg = (245, 245, 240) if _luma(panel_rgb) < 140 else (20, 20, 24)
    muted = _mix(fg, panel_rgb, 0.35)
    px0, py0, px1, py1 = margin, margin, w - margin, h - band - margin
    draw.rounded_rectangle((px0, py0, px1, py1), radius=max(6, base // 40), fill=panel_rgb)
    pad = max(10, base // 24)
    x, y, max_w = px0 + pad, py0 + pad, (px1 - px0) - 2 * pad
    bottom_limit = py1 - pad

    small = _font(max(12, base // 30))
    kind = " ".join((req.asset_type or "asset").upper())
    draw.text((x, y), kind, font=small, fill=muted)
    y += getattr(small, "size", 12) * 1.6

    name = " ".join((req.asset_name or "untitled").split()) or "untitled"
    size = max(16, base // 7)
    while True:
        big = _font(size)
        lines = wrap(name, big, max_w, 2)
        if size <= 16 or not any(ln.endswith("…") for ln in lines):
            break
        size = int(size * 0.88)
    line_h = getattr(big, "size", 16) * 1.15
    for ln in lines:
        draw.text((x, y), ln, font=big, fill=fg)
        y += line_h
    y += line_h * 0.25
    draw.line((x, y, x + max_w * 0.3, y), fill=palette[-1], width=max(2, base // 160))
    y += line_h * 0.35

    footer = f"{req.style_name or req.style_id or 'no style'}  ·  seed {req.seed}  ·  placeholder"
    footer_font = _font(max(11, base // 38))
    footer_h = getattr(footer_font, "size", 11) * 1.3
    body = _font(max(14, base // 26))
    body_h = getattr(body, "size", 14) * 1.3
    room = int((bottom_limit - footer_h - y) // body_h)
    text = excerpt(req.description) or "(no description)"
    if room > 0:
        for ln in wrap(text, body, max_w, room):
            draw.text((x, y), ln, font=body, fill=fg)
            y += body_h
    footer_lines = wrap(footer, footer_font, max_w, 1)
    if footer_lines:
        draw.text((x, bottom_limit - footer_h), footer_lines[0], font=footer_font, fill=muted)
    return img


class PlaceholderBackend(ImageBackend):
    backend_id = "placeholder"
    description = "offline, instant, deterministic cards (CI and demos)"

    def model_name(self) -> str:
        return RENDERER_VERSION

    def estimate_cost(self, req: ImageRequest) -> float | None:
        return 0.0

    def text_budget(self):
        from .budget import unlimited

        return unlimited("none (placeholder: no text encoder)")

    def generate_one(self, req: ImageRequest) -> ImageResult:
        return ImageResult(req.key, render(req), cost_usd=0.0)
