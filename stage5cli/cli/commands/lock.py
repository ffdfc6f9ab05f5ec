"""The "Lock and export" panel: lock, unlock, lock-all (the gatekeeper), export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stage5cli.cli.app import JsonOpt, ProjectOpt, app, console, esc, open_project_opt, print_json

AssetsArg = Annotated[list[str], typer.Argument(metavar="ASSET...", help="Assets by name, alias or id.")]


@app.command(rich_help_panel="Lock and export")
def lock(assets: AssetsArg, project: ProjectOpt = None) -> None:
    """Lock assets: a locked asset refuses edit, merge, remove, describe and generate."""
    from stage5cli.locking import set_locked

    names = set_locked(open_project_opt(project), assets, True)
    console().print(f"locked {len(names)} asset(s)" + (f": {esc(', '.join(names))}" if names else " (already locked)"))


@app.command(rich_help_panel="Lock and export")
def unlock(assets: AssetsArg, project: ProjectOpt = None) -> None:
    """Unlock assets (refused while stage 5 is locked)."""
    from stage5cli.locking import set_locked

    names = set_locked(open_project_opt(project), assets, False)
    console().print(f"unlocked {len(names)} asset(s)" + (f": {esc(', '.join(names))}" if names else " (none were locked)"))


@app.command("lock-all", rich_help_panel="Lock and export")
def lock_all_cmd(
    generated: Annotated[bool, typer.Option("--generated", help="Lock every asset that has a current image; leave the stage as it is.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Unresolved conflicts block too.")] = False,
    allow_placeholder: Annotated[bool, typer.Option("--allow-placeholder", help="Accept placeholder image keys (offline index cards) as signed off.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Lock even with unresolved conflicts, without asking.")] = False,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The gatekeeper: lock every asset and stage 5, or list what blocks it (exit 3)."""
    from stage5cli.locking import GateBlocked, lock_all
    from stage5cli.render import render_blockers

    p = open_project_opt(project)
    if not generated and not strict and not yes:
        yes = _confirm_conflicts(p, allow_placeholder=allow_placeholder, quiet=json_)
    try:
        result = lock_all(p, generated_only=generated, strict=strict,
                          allow_placeholder=allow_placeholder, accept_conflicts=yes)
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
        render_blockers(con, [], result["warnings"])
        con.print(f"locked {len(result['locked'])} generated asset(s); stage 5 is {result['stage']}")
    elif result.get("already"):
        con.print("stage 5 is already locked")
    else:
        render_blockers(con, [], result["warnings"])
        con.print(f"[green]stage 5 locked[/]: {len(result['locked'])} asset(s) locked on branch "
                  f"{esc(p.branch()['name'])}; export with stage5 export")


def _confirm_conflicts(p, *, allow_placeholder: bool, quiet: bool) -> bool:
    """Before locking with unresolved conflicts: warn, then ask (a terminal) or refuse (exit 2).
    True when the user said yes; False when there is nothing to confirm (or something blocks
    anyway: lock-all then reports the blockers)."""
    import os
    import sys

    from stage5cli.errors import UsageError
    from stage5cli.readiness import assess
    from stage5cli.render import render_blockers

    if p.stage()["status"] == "locked":
        return False
    r = assess(p, allow_placeholder=allow_placeholder)
    conflicts = [g for g in r.warnings if g.cause == "conflicts"]
    if r.blockers or not conflicts:
        return False
    g = conflicts[0]
    if not quiet:
        render_blockers(console(), [], [c.model_dump() for c in conflicts])
    if not sys.stdin.isatty() and not os.environ.get("STAGE5_ASSUME_TTY"):
        raise UsageError(f"{g.message} ({', '.join(g.assets[:5])}); locking would freeze them: "
                         f"resolve first ({g.fix}) or, to lock anyway, pass --yes "
                         "(not a terminal: pass --yes)")
    typer.confirm(f"{g.message}; lock stage 5 anyway (they cannot be resolved afterwards)?",
                  abort=True)
    return True


@app.command("export", rich_help_panel="Lock and export")
def export_cmd(
    format_: Annotated[str, typer.Option("--format", "-f", help="json, yaml, html (contact sheet), breakdown-csv, breakdown-html or fdx.")] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (json/yaml; default stdout) or folder (html).")] = None,
    draft: Annotated[bool, typer.Option("--draft", help="Export even though stage 5 is not locked (marked draft).")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of the export and exit.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Export the locked assets for the next stage: JSON, YAML or an HTML contact sheet."""
    from stage5cli import export

    if schema:
        print_json(export.schema())
        return
    text, written = export.export(open_project_opt(project), format_, out, draft=draft)
    if written is None:
        sys.stdout.write(text)
        return
    if format_.lower() == "html":
        sys.stdout.write(f"wrote the contact sheet: open {written.resolve().as_uri()}\n")
    else:
        sys.stdout.write(f"wrote {written}\n")
