"""Commands that lock: lock, unlock, lock-all (the gatekeeper)."""

from __future__ import annotations

from typing import Annotated

import typer

from .cli import JsonOpt, ProjectOpt, _open, app, console, handled, print_json

AssetsArg = Annotated[list[str], typer.Argument(metavar="ASSET...", help="Assets by name, alias or id.")]


@app.command(rich_help_panel="Lock and export")
@handled
def lock(assets: AssetsArg, project: ProjectOpt = None) -> None:
    """Lock assets: a locked asset refuses edit, merge, remove, describe and generate."""
    from .locking import set_locked

    names = set_locked(_open(project), assets, True)
    console().print(f"locked {len(names)} asset(s)" + (f": {', '.join(names)}" if names else " (already locked)"))


@app.command(rich_help_panel="Lock and export")
@handled
def unlock(assets: AssetsArg, project: ProjectOpt = None) -> None:
    """Unlock assets (refused while stage 5 is locked)."""
    from .locking import set_locked

    names = set_locked(_open(project), assets, False)
    console().print(f"unlocked {len(names)} asset(s)" + (f": {', '.join(names)}" if names else " (none were locked)"))


@app.command("lock-all", rich_help_panel="Lock and export")
@handled
def lock_all_cmd(
    generated: Annotated[bool, typer.Option("--generated", help="Lock every asset that has an image; leave the stage as it is.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Unresolved conflicts block too.")] = False,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The gatekeeper: lock every asset and stage 5, or list what blocks it (exit 3)."""
    from .locking import GateBlocked, lock_all
    from .render import render_blockers

    p = _open(project)
    try:
        result = lock_all(p, generated_only=generated, strict=strict)
    except GateBlocked as e:
        if json_:
            print_json({"locked": [], "stage": p.stage()["status"], "blockers": e.blockers,
                        "warnings": e.warnings})
        else:
            render_blockers(console(), e.blockers, e.warnings)  # the table; stderr gets one line
        raise
    if json_:
        print_json(result)
        return
    con = console()
    if generated:
        con.print(f"locked {len(result['locked'])} generated asset(s); stage 5 is {result['stage']}")
    elif result.get("already"):
        con.print("stage 5 is already locked")
    else:
        render_blockers(con, [], result["warnings"])
        con.print(f"[green]stage 5 locked[/]: {len(result['locked'])} asset(s) locked on branch "
                  f"{p.branch()['name']}; export with stage5 export")
