"""Which scripts a batch runs (files, folders searched recursively, glob patterns) and the
project folder name each one gets. (Not `discover.py`: the package exports the function
`discover`, and a submodule of the same name would shadow it.)"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from stage5cli.errors import UsageError

SCRIPT_EXTENSIONS = (".fountain", ".fdx", ".pdf", ".txt")
# folders never searched for scripts
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}


def _is_script(p: Path) -> bool:
    return p.suffix.lower() in SCRIPT_EXTENSIONS and p.is_file()


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _search(folder: Path, exclude: Path | None, pruned: list[Path]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or d in _SKIP_DIRS:
                continue
            if _inside((here / d).resolve(), exclude):
                pruned.append(here / d)
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            p = here / name
            if not name.startswith(".") and _is_script(p):
                found.append(p)
    return found


def discover(inputs: list[str], *, exclude: Path | None = None) -> list[Path]:
    """Script files from files, folders (searched recursively) and glob patterns; absolute,
    deduplicated, sorted. A literal path that does not exist is a UsageError; so is finding
    nothing at all. Anything under `exclude` (the output folder) is left out."""
    if not inputs:
        raise UsageError("no inputs: name script files, folders or glob patterns")
    exclude = exclude.resolve() if exclude is not None else None
    found: dict[str, Path] = {}
    ignored = 0  # files named inside the --out folder
    pruned: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            hits = _search(p, exclude, pruned)
        elif p.is_file():
            hits = [p]  # named explicitly: read whatever it is (the loader detects the format)
        elif any(c in raw for c in "*?["):
            hits = []
            for m in sorted(glob.glob(os.path.expanduser(raw), recursive=True)):
                q = Path(m)
                if q.is_dir():
                    hits += _search(q, exclude, pruned)
                elif _is_script(q):
                    hits.append(q)
        else:
            raise UsageError(f"no such file or folder: {raw}")
        for h in hits:
            a = h.resolve()
            if _inside(a, exclude):
                ignored += 1
            else:
                found.setdefault(str(a), a)
    if not found:
        shown = ", ".join(inputs[:3]) + (" ..." if len(inputs) > 3 else "")
        why = "; the --out folder is never searched" if ignored or pruned else ""
        raise UsageError(f"no scripts found in {shown} (looked for "
                         f"{', '.join('*' + e for e in SCRIPT_EXTENSIONS)}{why})")
    return sorted(found.values(), key=lambda q: q.as_posix())


def safe_stem(path: Path) -> str:
    stem = re.sub(r"[^\w.-]+", "-", path.stem).strip(".-")
    return stem[:80] or "script"


def project_names(scripts: list[Path]) -> dict[Path, str]:
    """A folder name per script: its stem, and for stems that collide (case-insensitively)
    stem-2, stem-3 ... in path order, never reusing a name another script has as its stem."""
    ordered = sorted(scripts, key=lambda q: q.as_posix())
    names: dict[Path, str] = {}
    used: set[str] = set()
    later: list[Path] = []
    for s in ordered:  # first pass: every first holder of a stem keeps it
        stem = safe_stem(s)
        if stem.lower() in used:
            later.append(s)
        else:
            used.add(stem.lower())
            names[s] = stem
    for s in later:
        stem, n = safe_stem(s), 2
        while f"{stem}-{n}".lower() in used:
            n += 1
        used.add(f"{stem}-{n}".lower())
        names[s] = f"{stem}-{n}"
    return names


def display(path: Path) -> str:
    """A script as the report shows it: relative to the current folder when inside it."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)
