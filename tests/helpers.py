"""Small builders for tests: projects with assets, without going through extraction."""

from __future__ import annotations

from pathlib import Path

from stage5cli import store
from stage5cli.db import atomic, close_all
from stage5cli.project import open_project


def add_assets(root: Path, spec: list[tuple[str, str, str]], *, conflicts: tuple[str, ...] = ()) -> None:
    """Insert (name, type, description) assets with one mention each."""
    p = open_project(root)
    with atomic(p.db):
        for i, (name, kind, desc) in enumerate(spec, start=1):
            meta = {"aliases": [], "user_fields": [], "confidence_score": 0.8,
                    "is_priority": i == 1, "has_conflicts": name in conflicts,
                    "conflict_details": "coat: blue (scene 1) vs red (scene 5)" if name in conflicts else ""}
            store.insert_asset(p, name=name, asset_type=kind, description=desc, metadata=meta,
                                mentions=[{"scene_number": i, "text": name, "context": f"{name} here."}])
    close_all()


TRIO = [
    ("MARA", "character", "A woman in her sixties with a silver braid and a long blue coat."),
    ("BRASS TELESCOPE", "prop", "A dented brass telescope with a leather grip."),
    ("LIGHTHOUSE LAMP ROOM", "location", "A round glass room around a huge turning lens."),
]
