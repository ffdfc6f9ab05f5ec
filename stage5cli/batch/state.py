"""What batch keeps between runs: the marker OUT/<stem>/batch.json and the rules built on it.

A project folder is claimed (marker `state: building`) before anything is built in it and
marked `state: done`, with the script's sha256, the style and a hash of the options, when it
finished; a later run with the same inputs skips it. Batch deletes only folders it made."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from stage5cli import files
from stage5cli.errors import UsageError

from .options import BatchOptions, Style, Task

MARKER = "batch.json"
MARKER_VERSION = 1
UP_TO_DATE = "up to date: finished earlier with the same script, style and options"


def now() -> str:
    from stage5cli.db import now as db_now

    return db_now()


def options_hash(opts: BatchOptions, style: Style) -> str:
    """What decides a project's content: extractor, images, lock, exports and the style.
    (The API base URL and the worker counts are left out: they do not change the result.)"""
    data = {"v": MARKER_VERSION, "model": opts.model, "generate": opts.generate,
            "backend": opts.backend if opts.generate else None,
            "image_model": opts.image_model if opts.generate else None,
            "lock": opts.lock, "exports": sorted(set(opts.exports)),
            "style": style.id, "style_sha256": style.sha256}
    # only when used, so that outputs made before these flags existed are not rebuilt
    data.update({k: True for k in ("strict", "allow_placeholder") if opts.lock and getattr(opts, k)})
    if opts.max_assets is not None:  # the cap of a kind decides which assets there are
        data["max_assets"] = opts.max_assets
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str | None:
    try:
        return files.sha256_of(path)
    except OSError:
        return None


def read_marker(project: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((project / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(task: Task) -> dict[str, Any] | None:
    """The stored result when the project finished with the same script, style and options."""
    root = Path(task.project)
    m = read_marker(root)
    if (m is None or m.get("version") != MARKER_VERSION or m.get("state") != "done"
            or task.sha256 is None or not (root / "stage5.db").is_file()):
        return None
    same = (m.get("script_sha256") == task.sha256 and m.get("style") == task.style.id
            and m.get("style_sha256") == task.style.sha256
            and m.get("options_hash") == task.options_hash)
    return m.get("result") if same and isinstance(m.get("result"), dict) else None


def write_atomic(path: Path, text: str) -> Path:
    """Write through a temp file in the same folder and a rename."""
    try:
        files.write_text(path, text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    return Path(path)


def _ours(root: Path) -> bool:
    """A folder batch made: it holds the marker batch wrote (a claimed or finished project), or
    only what a run killed before writing the marker leaves (nothing, an empty images/, temp
    files). A `stage5.db` alone proves nothing: it may be the user's own project."""
    if (root / MARKER).is_file() and not (root / MARKER).is_symlink():
        m = read_marker(root)
        return m is not None and m.get("version") == MARKER_VERSION and \
            m.get("state") in ("building", "done")
    for e in root.iterdir():
        if e.name == "images" and e.is_dir() and not e.is_symlink() and not any(e.iterdir()):
            continue
        if e.name.startswith(f".{MARKER}.") and files.temp_writer_pid(e.name) is not None:
            continue
        if re.fullmatch(r"\.stage5\.db\.init-[0-9]+(-wal|-shm|-journal)?", e.name):
            continue  # what init leaves when killed before its rename
        return False
    return True


def check_ours(root: Path) -> None:
    """Refuse (exit 2, naming the folder) an existing folder batch did not make."""
    if not root.exists() and not root.is_symlink():
        return
    if not root.is_dir() or root.is_symlink():
        raise UsageError(f"{root} exists and is not a project folder batch made: left untouched; "
                         "move it away or choose another --out")
    if not _ours(root):
        raise UsageError(f"{root} exists and is not a stage5 project batch made (no {MARKER} "
                         "marker of its own): left untouched; move it away or choose another --out")


def clear(root: Path) -> None:
    """Remove an unfinished/outdated project folder; refuse to touch anything else."""
    if not root.exists() and not root.is_symlink():
        return
    check_ours(root)
    try:
        shutil.rmtree(root)
    except OSError as e:
        raise UsageError(f"cannot remove the old project {root}: {e.strerror or e}") from None


def claim(task: Task) -> Path:
    """Clear the task's folder and claim it (marker `building`) before anything is built: a run
    killed from here on leaves a folder a re-run rebuilds."""
    root = Path(task.project)
    clear(root)
    try:
        root.mkdir(parents=True)
    except OSError as e:
        raise UsageError(f"cannot create {root}: {e.strerror or e}") from None
    write_atomic(root / MARKER, json.dumps({"version": MARKER_VERSION, "state": "building",
                                            "script": task.script, "started_at": now()}))
    return root


def mark_done(task: Task, result: dict[str, Any]) -> None:
    """Record that the project finished (what `is_done` checks on the next run)."""
    marker = {"version": MARKER_VERSION, "state": "done", "script": task.script,
              "script_sha256": task.sha256,
              "style": task.style.id, "style_sha256": task.style.sha256,
              "options_hash": task.options_hash, "finished_at": now(), "result": result}
    write_atomic(Path(task.project) / MARKER, json.dumps(marker, indent=2, ensure_ascii=False) + "\n")


LOCK = ".stage5-batch.lock"


class OutLock:
    """OUT/.stage5-batch.lock, held (flock) for the whole run by the parent and, through the
    inherited descriptor, by every forked worker: while any process of a run is alive (a worker
    orphaned by a kill -9 of its parent included), another run on the same --out is refused."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK
        self.fd: int | None = None

    def acquire(self) -> OutLock:
        import os

        try:
            import fcntl
        except ImportError:  # (Windows: no lock; the workers still exit with their parent)
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UsageError(f"cannot create {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            finally:
                os.close(fd)
            raise UsageError(f"another stage5 batch (pid {holder}, or its worker processes) is "
                             f"still using {self.path.parent}; wait for it or stop it, then "
                             "run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        import os

        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> OutLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
