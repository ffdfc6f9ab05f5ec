"""Colour words for prompts: the nearest named colour of a #rrggbb palette entry.

Text encoders read "dark teal", not "#1f2a36". The names are the xkcd colour survey's
(954 names people actually use, CC0; taken from matplotlib's `_color_data.XKCD_COLORS`, a few
crude ones removed), shipped as `prompts/colour_names.json`. Nearness is the CIE76 distance
in CIELAB (D65), which follows perceived difference far better than RGB distance.
"""

from __future__ import annotations

import functools
import json


def _srgb_to_lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    def lin(c: float) -> float:
        c /= 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@functools.cache
def _table() -> list[tuple[str, tuple[float, float, float]]]:
    from importlib.resources import files

    data = json.loads((files("stage5cli.prompts") / "colour_names.json").read_text("utf-8"))
    return [(name, _srgb_to_lab(_rgb(hex_))) for name, hex_ in data["colours"].items()]


@functools.lru_cache(maxsize=1024)
def colour_name(hex_colour: str) -> str:
    """The nearest named colour, e.g. '#1f2a36' -> 'dark navy blue'-like words."""
    lab = _srgb_to_lab(_rgb(hex_colour))
    return min(_table(), key=lambda e: sum((a - b) ** 2 for a, b in zip(e[1], lab, strict=True)))[0]


def palette_words(palette: list[str]) -> list[str]:
    """Colour names for a palette, in order, without repeats."""
    return list(dict.fromkeys(colour_name(c) for c in palette))
