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


def run_demo(directory: Path, say: Callable[[str], None], *, style: str = DEMO_STYLE) -> dict[str, Any]:
    from . import pipeline
    from .project import DB_NAME

    if directory.exists():
        if not (directory / DB_NAME).is_file():
            raise UsageError(f"{directory} exists and is not a stage5 project; choose another --dir")
        shutil.rmtree(directory)  # the demo always starts from a clean project
    script = demo_script()

    def step(s: pipeline.Step) -> None:
        if not s.done:
            return
        r = s.result
        if s.stage == "init":
            say(f"1. created project {directory}")
        elif s.stage == "style":
            say(f"2. locked style {style}")
        elif s.stage == "extract":
            c = r.counts
            say(f"3. extracted {c['character']} characters, {c['location']} locations, "
                f"{c['prop']} props from {script.name} (built-in extractor, offline)")
        elif s.stage == "conflicts":
            if not r.resolved and not r.unresolved:
                say("4. no visual conflicts to resolve")
            for line in r.resolved:
                name, why = line.split(": ", 1)
                say(f"4. resolved a visual conflict: stage5 conflicts {name} --apply ({why})")
            if r.unresolved:
                say(f"4. left unresolved (no offline suggestion): {', '.join(r.unresolved)}; "
                    "locking anyway")
        elif s.stage == "generate":
            say(f"5. generated {r.generated} placeholder image keys in {directory / 'images'}")
        elif s.stage == "lock":
            say(f"6. lock-all --allow-placeholder: {r.locked} assets locked, stage 5 {r.stage} "
                "(the demo's images are placeholders; lock-all refuses them without that flag)")
        elif s.stage == "export":
            say(f"7. exported {r.exports['json']} and the contact sheet {r.exports['html']}")

    # placeholders are index cards, not real images: the gatekeeper accepts them only when told
    r = pipeline.run(directory, script, pipeline.PipelineOptions(
        style=style, resolve_conflicts=True, generate=True, backend="placeholder", lock=True,
        allow_placeholder=True, exports=("json", "html")), step)
    return {"project": str(directory), "assets": r.assets, "images": r.generated,
            "stage": r.stage, "export": str(r.exports["json"]),
            "contact_sheet": str(r.exports["html"])}
