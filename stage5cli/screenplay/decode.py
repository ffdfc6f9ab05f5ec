"""Bytes -> text for script files: BOMs, UTF-8, then cp1252; binary data is refused."""

from __future__ import annotations

import codecs
import re

from stage5cli.errors import UsageError

# C0 control characters other than tab, newline, vertical tab, form feed and carriage return
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")

BINARY = "not a screenplay (binary data)"


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding name). Raise UsageError for binary or undecodable data."""
    if data.startswith(codecs.BOM_UTF8):
        text, encoding = _strict(data[3:], "utf-8"), "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) and len(data) % 4 == 0:
        text, encoding = _strict(data, "utf-32"), "utf-32"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, encoding = _strict(data, "utf-16"), "utf-16"
    else:
        if b"\x00" in data:
            raise UsageError(BINARY)
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = _strict(data, "cp1252"), "cp1252"
    if text.startswith("\ufeff"):
        text = text[1:]
    _refuse_binary(text)
    return text, encoding


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, ValueError):
        raise UsageError(BINARY) from None


def _refuse_binary(text: str) -> None:
    """Text with a NUL, or with control characters in more than 1 in 200 characters, is binary."""
    if "\x00" in text:
        raise UsageError(BINARY)
    sample = text[:65536]
    controls = len(_CONTROL.findall(sample))
    if controls and controls * 200 > len(sample):
        raise UsageError(BINARY)
