"""Atomic file writes: a temp file in the same folder, fsync, rename. One place for all of them.

Temp names are `.<final name>.<pid>.<random>.tmp` (never the final name), so a reader never
sees half a file and a killed writer's leftovers can be recognised and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

TMP_SUFFIX = ".tmp"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_chunks(path: Path, chunks: Iterable[bytes]) -> str:
    """Write the chunks to `path` atomically and return the file's sha256.

    Raises OSError (the caller turns it into its one-line message); on failure nothing is
    left at `path` and no temp file remains.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "it is a folder", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return h.hexdigest()


def write_bytes(path: Path, data: bytes) -> str:
    return write_chunks(path, [data])


def write_text(path: Path, text: str) -> str:
    return write_chunks(path, [text.encode("utf-8")])


def copy(src: Path, dst: Path) -> str:
    """Copy src to dst atomically; return the sha256 of the copy."""
    with Path(src).open("rb") as inp:
        return write_chunks(dst, iter(lambda: inp.read(1 << 20), b""))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temp files whose writer process is gone; returns how many."""
    removed = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for tmp in folder.glob(f".*{TMP_SUFFIX}"):
        parts = tmp.name.split(".")
        pid = next((int(p) for p in reversed(parts[:-2]) if p.isdigit()), None)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed
