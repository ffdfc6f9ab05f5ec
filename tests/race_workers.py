"""Workers for tests/test_races.py: real processes that run one stage5 action on try i's
project, all starting together at a barrier (so a read-before-transaction race shows)."""

from __future__ import annotations

import traceback
from pathlib import Path


def _assets():
    from stage5cli.models import ExtractedAsset, Mention

    kinds = ("character", "prop", "location")
    return [ExtractedAsset(name=f"THING {i:02d}", type=kinds[i % 3],
                           mentions=[Mention(scene_number=1, text=f"THING {i:02d}")],
                           description=f"thing {i}") for i in range(40)]


def _action(kind: str, root: Path, who: int) -> str:
    from stage5cli.project import open_project

    p = open_project(root)
    try:
        if kind == "extract":
            from stage5cli.store import save_extraction

            save_extraction(p, _assets(), extractor="builtin", model=None,
                            script_path="s.fountain", script_sha256="0" * 64)
        elif kind == "lock-all":
            if who == 0:
                from stage5cli.locking import lock_all

                lock_all(p, allow_placeholder=True, accept_conflicts=True)
            else:
                from stage5cli.curation import add

                add(p, "LATE ARRIVAL", "prop")
        elif kind == "library-use":
            from stage5cli.library import use

            use(p, "SHARED LAMP")
        return "ok"
    except Exception as e:  # a refusal is a fine outcome; the test checks the data
        from stage5cli.errors import Stage5Error

        return f"refused: {e}" if isinstance(e, Stage5Error) else traceback.format_exc()
    finally:
        p.db.conn.close()


def worker(kind: str, roots: list[str], who: int, barrier, out) -> None:
    for root in roots:
        barrier.wait(timeout=120)
        out.put((root, who, _action(kind, Path(root), who)))
