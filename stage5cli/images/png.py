"""Write image keys as PNG files atomically, with traceable text metadata.

Every PNG carries two text chunks:
- `parameters`: the AUTOMATIC1111 convention (prompt, `Negative prompt:` line, then one line of
  `Key: value` pairs: Steps, Sampler, CFG scale, Seed, Size, Model), which image viewers and
  other tools already read;
- `stage5`: JSON with the asset id, style id and style sha256 (and whatever else the caller
  records), so any image can be traced back to its asset and locked style.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from stage5cli import files
from stage5cli.errors import Stage5Error

if TYPE_CHECKING:
    from PIL.Image import Image

    from .base import ImageRequest

TMP_SUFFIX = files.TMP_SUFFIX
_NEEDS_QUOTES = re.compile(r"[,:\n\"]")


def _quote(value: object) -> str:
    """A1111 quotes a value that contains a comma, colon, newline or quote."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if _NEEDS_QUOTES.search(text) else text


def a1111_parameters(req: ImageRequest, model: str | None) -> str:
    """The A1111 `parameters` text for a request."""
    lines = [req.prompt.strip()]
    if req.negative_prompt.strip():
        lines.append(f"Negative prompt: {req.negative_prompt.strip()}")
    pairs = [
        ("Steps", req.steps),
        ("Sampler", req.sampler or "default"),
        ("CFG scale", f"{req.guidance:g}"),
        ("Seed", req.seed),
        ("Size", f"{req.width}x{req.height}"),
    ]
    if model:
        pairs.append(("Model", model))
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs))
    return "\n".join(lines)


_PAIR = re.compile(r'\s*([\w ][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111_parameters(text: str) -> dict:
    """Inverse of `a1111_parameters`: {"prompt", "negative_prompt", "Steps", "Seed", ...}."""
    lines = text.strip("\n").split("\n")
    last = lines[-1] if "Steps: " in lines[-1] else ""
    body = lines[:-1] if last else lines
    prompt, negative, in_negative = [], [], False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    out: dict = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative)}
    for key, value in _PAIR.findall(last):
        value = value.strip()
        if value.startswith('"'):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        out[key.strip()] = value
    return out


def encode_png(image: Image, *, parameters: str, stage5: dict) -> bytes:
    """PNG bytes with the two text chunks. Deterministic: same pixels and text, same bytes."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    # Pillow writes tEXt when the text is Latin-1 and iTXt (UTF-8) otherwise.
    info.add_text("parameters", parameters)
    info.add_text("stage5", json.dumps(stage5, sort_keys=True, ensure_ascii=True))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_png(image: Image, path: Path, *, parameters: str, stage5: dict) -> str:
    """Write `image` to `path` atomically (temp file in the same folder, fsync, os.replace)
    and return the sha256 of the file. A failure leaves no file at `path` and no temp file;
    it raises Stage5Error with one line naming the path and the reason."""
    data = encode_png(image, parameters=parameters, stage5=stage5)
    try:
        return files.write_bytes(Path(path), data)
    except OSError as exc:
        raise Stage5Error(f"cannot write image {path}: {exc.strerror or exc}") from exc


# Temp files a killed writer left behind (their process is gone) are removed by the shared
# helper; re-exported here for the image callers.
remove_stale_temp_files = files.remove_stale_temp_files

def read_png_metadata(path: Path) -> dict:
    """{"parameters": str|None, "stage5": dict|None, "width", "height", "text": all chunks,
    "sha256"}; NotFound/unreadable files raise Stage5Error."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    path = Path(path)
    try:
        raw = path.read_bytes()
        with PILImage.open(io.BytesIO(raw)) as im:
            im.load()
            text = dict(getattr(im, "text", {}) or {})
            width, height = im.size
    except (OSError, UnidentifiedImageError) as exc:
        raise Stage5Error(f"cannot read image {path}: {exc}") from exc
    stage5 = None
    if "stage5" in text:
        with contextlib.suppress(json.JSONDecodeError):
            stage5 = json.loads(text["stage5"])
    return {
        "parameters": text.get("parameters"),
        "stage5": stage5,
        "width": width,
        "height": height,
        "text": text,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }


def read_text_chunk(path: Path, key: str, *, limit: int = 1 << 20) -> str | None:
    """The text of one tEXt/iTXt chunk, read with the standard library only (no PIL: status
    and review use it); None when the file, the chunk or its text cannot be read."""
    import struct
    import zlib

    try:
        with Path(path).open("rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind == b"IDAT" or kind == b"IEND" or length > limit:
                    return None  # text chunks written by stage5 come before the pixels
                data = f.read(length)
                f.read(4)  # crc
                if kind == b"tEXt":
                    name, _, text = data.partition(b"\0")
                    if name.decode("latin-1") == key:
                        return text.decode("latin-1")
                elif kind == b"iTXt":
                    name, _, rest = data.partition(b"\0")
                    if name.decode("latin-1") != key or len(rest) < 2:
                        continue
                    compressed, rest = rest[0], rest[2:]
                    _lang, _, rest = rest.partition(b"\0")
                    _tkey, _, text = rest.partition(b"\0")
                    return (zlib.decompress(text) if compressed else text).decode("utf-8")
    except (OSError, ValueError, struct.error, zlib.error, UnicodeDecodeError):
        return None
