"""Screenplay ingestion: Fountain, Final Draft (.fdx), PDF and plain text -> one `Screenplay` model.

    load(path)            a file on disk, reader chosen by extension, or by content when the
                          extension is missing or wrong (FDX root element, %PDF- magic, else text)
    loads(data, name=..)  the same for bytes in memory
    parse_fountain(text)  Fountain text -> Screenplay
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stage5cli.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from stage5cli.screenplay.fountain import parse_fountain
    from stage5cli.screenplay.model import Element, Scene, Screenplay, Source, TitleEntry

# The model (pydantic) and the Fountain parser load on first use, so that a module that needs
# only the heading vocabulary (screenplay.scenes, via extract.names) leaves pydantic unloaded:
# `stage5 show` resolves names with it.
_LAZY = {"parse_fountain": "fountain", "Element": "model", "Scene": "model",
         "Screenplay": "model", "Source": "model", "TitleEntry": "model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"stage5cli.screenplay.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Element",
    "FORMATS",
    "Scene",
    "Screenplay",
    "Source",
    "TitleEntry",
    "detect_format",
    "load",
    "loads",
    "parse_fountain",
]

DEFAULT_MAX_BYTES = 10_000_000
FORMATS = ("fountain", "fdx", "pdf", "plain")
_BY_EXTENSION = {
    ".fountain": "fountain",
    ".spmd": "fountain",
    ".txt": "plain",
    ".text": "plain",
    ".fdx": "fdx",
    ".pdf": "pdf",
}


def detect_format(data: bytes, name: str = "") -> str:
    """The reader for these bytes: content first (PDF magic, FDX root), then the extension."""
    ext = Path(name).suffix.lower()
    head = data[:4096]
    if head.lstrip(b"\xef\xbb\xbf \t\r\n\x00").startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 XML
        head = head.decode("utf-16", "ignore").encode("utf-8")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and (
        b"<FinalDraft" in head or ext == ".fdx"
    ):
        return "fdx"
    return "plain" if _BY_EXTENSION.get(ext) == "plain" else "fountain"


def loads(data: bytes, *, name: str = "<bytes>", fmt: str | None = None) -> Screenplay:
    """Parse script bytes; `fmt` forces a reader ("fountain", "fdx", "pdf", "plain")."""
    if fmt is None:
        fmt = detect_format(data, name)
    elif fmt not in FORMATS:
        raise UsageError(f"unknown script format {fmt!r}; use one of {', '.join(FORMATS)}")
    sha = hashlib.sha256(data).hexdigest()
    if fmt == "pdf":
        from stage5cli.screenplay.pdf import parse_pdf

        sp, encoding = parse_pdf(data), "pdf"
    elif fmt == "fdx":
        from stage5cli.screenplay.fdx import parse_fdx

        sp, encoding = parse_fdx(data), "xml"
    else:
        from stage5cli.screenplay.decode import decode

        if not data.strip():
            raise UsageError("script is empty")
        text, encoding = decode(data)
        if not text.strip():
            raise UsageError("script is empty")
        if fmt == "plain":
            from stage5cli.screenplay.plain import parse_plain

            sp = parse_plain(text)
        else:
            from stage5cli.screenplay.fountain import parse_fountain

            sp = parse_fountain(text)
    from stage5cli.screenplay.model import Source

    sp.source = Source(path=None if name == "<bytes>" else name, format=fmt, sha256=sha, encoding=encoding)
    return sp


def load(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Screenplay:
    """Read and parse a script file. Every problem with the file is a one-line UsageError."""
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{p} is a folder, not a script file")
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
            raise UsageError(f"{p} is {kind}, not a script file")
        size = st.st_size
    except FileNotFoundError:
        raise NotFoundError(f"script not found: {p}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise UsageError(
            f"{p} is {size:,} bytes, over the {max_bytes:,}-byte limit; "
            "raise it with --max-size BYTES if this really is a script"
        )
    try:
        with p.open("rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped since the stat
                raise UsageError(f"{p} is not a regular file, not a script file")
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # grew while we looked
        raise UsageError(f"{p} is over the {max_bytes:,}-byte limit; raise it with --max-size BYTES")
    sp = loads(data, name=str(p))
    sp.source.path = str(p)
    return sp
