"""The "Library" panel: promote, library list|show|use|remove (the global library)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stage5cli.cli.app import (
    JsonOpt,
    ProjectOpt,
    app,
    console,
    library_app,
    open_project_opt,
    print_json,
)

TypeOpt = Annotated[str | None, typer.Option("--type", "-t",
                                             help="character, prop or location.")]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


@app.command(rich_help_panel="Library")
def promote(
    assets: Annotated[list[str], typer.Argument(metavar="ASSET...", help="Assets by name, alias or id.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a library asset of the same name and type.")] = False,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Copy assets and their image keys into the global library ($STAGE5_HOME)."""
    from stage5cli import library

    done = library.promote(open_project_opt(project), assets, overwrite=overwrite)
    if json_:
        print_json(done)
        return
    for d in done:
        _say(f"{d['action']} {d['type']} {d['asset']} as library asset {d['library_id']}")
    _say(f"library: {library.home() / library.DB_NAME}")


@library_app.command("list")
def library_list(asset_type: TypeOpt = None, json_: JsonOpt = False) -> None:
    """List the library's assets."""
    from stage5cli import library

    items = library.list_assets(asset_type)
    if json_:
        print_json([i.model_dump(mode="json") for i in items])
        return
    from rich.table import Table

    t = Table(title=f"Library ({len(items)})", caption=str(library.home() / library.DB_NAME))
    for col in ("id", "name", "type", "style", "from project", "description"):
        t.add_column(col, overflow="fold")
    from stage5cli.cli.app import esc as escape

    for i in items:
        t.add_row(str(i.id), escape(i.name), i.type, escape(i.style_id or "-"),
                  escape(i.promoted_from_project_name or (i.promoted_from_project_id or "")[:8]),
                  escape(i.description[:80]))
    console().print(t)


@library_app.command("show")
def library_show(
    name: Annotated[str, typer.Argument(help="Library asset name, alias or id.")],
    asset_type: TypeOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one library asset in full."""
    from stage5cli import library

    item = library.show(name, asset_type)
    if json_:
        print_json(item.model_dump(mode="json"))
        return
    from stage5cli.cli.app import esc

    con = console()
    for key, value in item.model_dump(mode="json").items():
        if isinstance(value, list):
            value = ", ".join(value)
        if value is None or value == "":
            continue  # empty fields (voice_profile_id, ...) are left out; --json has them all
        con.print(f"[bold]{key}[/] {esc(value)}")


@library_app.command("use")
def library_use(
    name: Annotated[str, typer.Argument(help="Library asset name, alias or id.")],
    as_name: Annotated[str | None, typer.Option("--as", help="Name it differently in this project.")] = None,
    asset_type: TypeOpt = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Copy a library asset (with its image) into this project as an unlocked asset."""
    from stage5cli import library, store

    p = open_project_opt(project)
    row, warnings = library.use(p, name, as_name=as_name, asset_type=asset_type)
    for w in warnings:
        _warn(w)
    if json_:
        print_json(store.view(row, []).model_dump(mode="json"))
        return
    _say(f"added {row['asset_type']} {row['name']} (id {row['id']}) from the library "
         f"with image {row['image_key_url']}")


@library_app.command("remove")
def library_remove(
    name: Annotated[str, typer.Argument(help="Library asset name, alias or id.")],
    asset_type: TypeOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an asset (and its image) from the library; projects that used it keep their copy."""
    from stage5cli import library
    from stage5cli.errors import UsageError

    item = library.show(name, asset_type)
    if not yes:
        question = f"remove {item.type} {item.name!r} (id {item.id}) from the library?"
        if not sys.stdin.isatty() and not os.environ.get("STAGE5_ASSUME_TTY"):
            raise UsageError(f"{question} refused without a terminal: pass --yes")
        typer.confirm(question, abort=True)
    gone = library.remove(str(item.id), item.type)
    _say(f"removed {gone.type} {gone.name} from the library")
