"""`stage5 demo`: the whole flow, offline, on the bundled example script."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UsageError

DEMO_STYLE = "watercolour-storybook"
DEMO_SCRIPT = "the_last_lamp.fountain"


def demo_script() -> Path:
    from importlib.resources import files

    return Path(str(files("stage5cli.examples") / "scripts" / DEMO_SCRIPT))


def _resolve_conflicts(project, say: Callable[[str], None]) -> list[str]:
    """Step 4: settle every visual conflict with the offline rule (`stage5 conflicts NAME
    --apply`) before the images are made; returns the names left unresolved."""
    from .conflicts import apply_suggestion, list_conflicts
    from .errors import UsageError as NoSuggestion

    settled, left = [], []
    for c in list_conflicts(project):
        try:
            s, _ = apply_suggestion(project, str(c.id))
        except NoSuggestion:
            left.append(c.name)
            continue
        settled.append(f"stage5 conflicts {c.name} --apply ({s.reasoning})")
    if not settled and not left:
        say("4. no visual conflicts to resolve")
    for line in settled:
        say(f"4. resolved a visual conflict: {line}")
    if left:
        say(f"4. left unresolved (no offline suggestion): {', '.join(left)}; locking anyway")
    return left


def run_demo(directory: Path, say: Callable[[str], None], *, style: str = DEMO_STYLE) -> dict[str, Any]:
    from . import jobs
    from .extraction import ExtractOptions
    from .extraction import run as extract
    from .images import get_backend
    from .locking import lock_all
    from .project import DB_NAME, init_project, lock_style

    if directory.exists():
        if not (directory / DB_NAME).is_file():
            raise UsageError(f"{directory} exists and is not a stage5 project; choose another --dir")
        shutil.rmtree(directory)  # the demo always starts from a clean project
    project, _ = init_project(directory)
    say(f"1. created project {directory}")
    lock_style(project, style)
    say(f"2. locked style {style}")
    script = demo_script()
    outcome = extract(project, script, ExtractOptions())
    c = outcome.counts
    say(f"3. extracted {c['character']} characters, {c['location']} locations, {c['prop']} props "
        f"from {script.name} (built-in extractor, offline)")
    unresolved = _resolve_conflicts(project, say)
    sel = jobs.select(project, [], all_=True, missing=False, retry_failed=False)
    plan = jobs.build_requests(project, sel.rows, backend=get_backend("placeholder"), steps=None, seed=None)
    gen = jobs.run(project, plan)
    say(f"5. generated {len(gen['done'])} placeholder image keys in {directory / 'images'}")
    # placeholders are index cards, not real images: the gatekeeper accepts them only when told
    locked = lock_all(project, allow_placeholder=True, accept_conflicts=bool(unresolved))
    say(f"6. lock-all --allow-placeholder: {len(locked['locked'])} assets locked, stage 5 "
        f"{locked['stage']} (the demo's images are placeholders; lock-all refuses them without "
        "that flag)")
    result = {"project": str(directory), "assets": sum(c.values()), "images": len(gen["done"]),
              "stage": locked["stage"]}
    try:
        from .export import write_export  # noqa: F401 (export lands with the library work)
    except ImportError:
        return result
    json_path = directory / "export.json"
    html_dir = directory / "contact-sheet"
    write_export(project, fmt="json", out=json_path)
    write_export(project, fmt="html", out=html_dir)
    say(f"7. exported {json_path} and the contact sheet {html_dir / 'index.html'}")
    result.update(export=str(json_path), contact_sheet=str(html_dir / "index.html"))
    return result
