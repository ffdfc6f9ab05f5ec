"""Image files of removed assets: the project's trash folder, and moving files in and out of it
(remove puts them there, undo brings them back)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from . import store
from .errors import Stage5Error
from .project import Project


def project_file(project: Project, rel: str | None) -> Path | None:
    """The file a stored image path points at, only when it lies inside the project folder."""
    if not rel or "://" in rel:
        return None
    path = Path(rel)
    path = path if path.is_absolute() else project.root / path
    try:
        path.resolve().relative_to(project.root.resolve())
    except ValueError:
        return None
    return path


def relative(project: Project, path: Path) -> str:
    return path.resolve().relative_to(project.root.resolve()).as_posix()


def image_files(project: Project, ids: list[int]) -> list[Path]:
    """The image files on disk that belong to these assets (image keys and job outputs)."""
    out: dict[str, Path] = {}
    for ref in store.image_refs(project, ids):
        path = project_file(project, ref)
        if path is not None and path.is_file() and project.trash_dir.resolve() not in \
                path.resolve().parents:
            out.setdefault(str(path.resolve()), path)
    return list(out.values())


def still_referenced(project: Project, path: Path) -> bool:
    """Does any row (any branch) still point at this file?"""
    target = path.resolve()
    for ref in store.all_image_refs(project):
        p = project_file(project, ref)
        if p is not None and p.resolve() == target:
            return True
    return False


def trash_name(project: Project, path: Path) -> Path:
    from .files import require_inside

    require_inside(project.root, project.trash_dir, "the trash folder")
    project.trash_dir.mkdir(parents=True, exist_ok=True)
    require_inside(project.root, project.trash_dir, "the trash folder")
    while True:
        dest = project.trash_dir / f"{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}"
        if not dest.exists():
            return dest


def move_files(moves: list[tuple[Path, Path]]) -> None:
    """os.replace each (src, dst); on any failure put back what was moved and re-raise."""
    done: list[tuple[Path, Path]] = []
    try:
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            done.append((src, dst))
    except OSError as e:
        for src, dst in reversed(done):
            try:
                os.replace(dst, src)
            except OSError:
                pass
        raise Stage5Error(f"cannot move {e.filename}: {e.strerror or e}") from None


def undo_moves(moves: list[tuple[Path, Path]]) -> None:
    for src, dst in reversed(moves):
        try:
            os.replace(dst, src)
        except OSError:
            pass

