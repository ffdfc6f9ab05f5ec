"""Atomic file writes: a temp file in the same folder, fsync, rename. One place for all of them.

Temp names are `.<final name>.<pid>.<random>.tmp` (never the final name), so a reader never
sees half a file and a killed writer's leftovers can be recognised and removed.

What is at the target decides how it is written:
- nothing, or a regular file: temp file + rename; a new file gets the umask's mode (0644 under
  a 022 umask), a replaced file keeps its mode;
- a symlink: written through: the file it points at is replaced (atomically, in its folder), the
  link stays;
- a character device (`/dev/null`, `/dev/stdout`): written directly, never renamed over;
- anything else (a folder, a FIFO, a socket, a block device): refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
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


def umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def write_chunks(path: Path, chunks: Iterable[bytes]) -> str:
    """Write the chunks to `path` atomically and return the file's sha256.

    Raises OSError (the caller turns it into its one-line message); on failure nothing is
    left at `path` and no temp file remains. See the module docstring for symlinks, devices
    and modes.
    """
    path = Path(path)
    if path.is_symlink():  # write through the link: replace what it points at, keep the link
        path = path.resolve()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    mode = (0o666 & ~umask()) if st is None else stat.S_IMODE(st.st_mode)
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "it is a folder", str(path))
        if stat.S_ISCHR(st.st_mode):
            return _write_device(path, chunks)
        raise OSError(22, "not a regular file (refused: stage5 writes only files and devices)",
                      str(path))
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
            with contextlib.suppress(OSError):
                os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return h.hexdigest()


def _write_device(path: Path, chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    with open(path, "wb", buffering=0) as out:
        for chunk in chunks:
            h.update(chunk)
            out.write(chunk)
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


# `.<final name>.<pid>.<mkstemp's 8 random characters>.tmp`: exactly what write_chunks makes.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]{8}\.tmp$")


def temp_writer_pid(name: str) -> int | None:
    """The writer pid of a stage5 temp file name, or None when the name is not one of ours."""
    m = _TEMP_NAME.match(name)
    return int(m.group("pid")) if m else None


def stale_temp_files(folder: Path) -> list[Path]:
    """stage5's own temp files (exact naming pattern, regular files) whose writer is gone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for tmp in folder.iterdir():
        pid = temp_writer_pid(tmp.name)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        if tmp.is_symlink() or not tmp.is_file():
            continue
        out.append(tmp)
    return out


def remove_stale_temp_files(folder: Path) -> int:
    """Delete stage5's own temp files whose writer process is gone; returns how many.
    Nothing else is touched: a name that merely contains `.tmp` is the user's."""
    removed = 0
    for tmp in stale_temp_files(folder):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed += 1
    return removed


def inside(root: Path, path: Path) -> bool:
    """Does `path`, with every symlink resolved, lie inside the folder `root` (resolved)?"""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def require_inside(root: Path, path: Path, what: str = "") -> Path:
    """`path` when it (symlinks resolved) lies inside the project folder `root`; otherwise a
    UsageError (exit 2): stage5 never writes, moves or deletes outside the project."""
    if not inside(root, path):
        from .errors import UsageError

        label = f"{what} " if what else ""
        raise UsageError(f"{label}{path} resolves to {Path(path).resolve()}, outside the project "
                         f"folder {Path(root).resolve()}: refused (stage5 writes only inside it)")
    return Path(path)
