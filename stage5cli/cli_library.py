"""Commands of the global library and the export: promote, library list|show|use|remove, export."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .cli import (
    JsonOpt,
    ProjectOpt,
    _open,
    app,
    console,
    handled,
    library_app,
    print_json,
)

TypeOpt = Annotated[str | None, typer.Option("--type", "-t",
                                             help="character, prop or location.")]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


@app.command(rich_help_panel="Library")
@handled
def promote(
    assets: Annotated[list[str], typer.Argument(metavar="ASSET...", help="Assets by name, alias or id.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a library asset of the same name and type.")] = False,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Copy assets and their image keys into the global library ($STAGE5_HOME)."""
    from . import library

    done = library.promote(_open(project), assets, overwrite=overwrite)
    if json_:
        print_json(done)
        return
    for d in done:
        _say(f"{d['action']} {d['type']} {d['asset']} as library asset {d['library_id']}")
    _say(f"library: {library.home() / library.DB_NAME}")


@library_app.command("list")
@handled
def library_list(asset_type: TypeOpt = None, json_: JsonOpt = False) -> None:
    """List the library's assets."""
    from . import library

    items = library.list_assets(asset_type)
    if json_:
        print_json([i.model_dump(mode="json") for i in items])
        return
    from rich.table import Table

    t = Table(title=f"Library ({len(items)})", caption=str(library.home() / library.DB_NAME))
    for col in ("id", "name", "type", "style", "from project", "description"):
        t.add_column(col, overflow="fold")
    from rich.markup import escape

    for i in items:
        t.add_row(str(i.id), escape(i.name), i.type, escape(i.style_id or "-"),
                  (i.promoted_from_project_id or "")[:8], escape(i.description[:80]))
    console().print(t)


@library_app.command("show")
@handled
def library_show(
    name: Annotated[str, typer.Argument(help="Library asset name, alias or id.")],
    asset_type: TypeOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one library asset in full."""
    from . import library

    item = library.show(name, asset_type)
    if json_:
        print_json(item.model_dump(mode="json"))
        return
    from rich.markup import escape

    con = console()
    for key, value in item.model_dump(mode="json").items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        con.print(f"[bold]{key}[/] {escape('-' if value is None else str(value))}", highlight=False)


@library_app.command("use")
@handled
def library_use(
    name: Annotated[str, typer.Argument(help="Library asset name, alias or id.")],
    as_name: Annotated[str | None, typer.Option("--as", help="Name it differently in this project.")] = None,
    asset_type: TypeOpt = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Copy a library asset (with its image) into this project as an unlocked asset."""
    from . import assets as store
    from . import library

    p = _open(project)
    row, warnings = library.use(p, name, as_name=as_name, asset_type=asset_type)
    for w in warnings:
        _warn(w)
    if json_:
        print_json(store.view(row, []).model_dump(mode="json"))
        return
    _say(f"added {row['asset_type']} {row['name']} (id {row['id']}) from the library "
         f"with image {row['image_key_url']}")


@library_app.command("remove")
@handled
def library_remove(
    name: Annotated[str, typer.Argument(help="Library asset name, alias or id.")],
    asset_type: TypeOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an asset (and its image) from the library; projects that used it keep their copy."""
    from . import library
    from .errors import UsageError

    item = library.show(name, asset_type)
    if not yes:
        question = f"remove {item.type} {item.name!r} (id {item.id}) from the library?"
        if not sys.stdin.isatty() and not os.environ.get("STAGE5_ASSUME_TTY"):
            raise UsageError(f"{question} refused without a terminal: pass --yes")
        typer.confirm(question, abort=True)
    gone = library.remove(str(item.id), item.type)
    _say(f"removed {gone.type} {gone.name} from the library")


@app.command("export", rich_help_panel="Lock and export")
@handled
def export_cmd(
    format_: Annotated[str, typer.Option("--format", "-f", help="json, yaml, html (contact sheet), breakdown-csv, breakdown-html or fdx.")] = "json",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (json/yaml; default stdout) or folder (html).")] = None,
    draft: Annotated[bool, typer.Option("--draft", help="Export even though stage 5 is not locked (marked draft).")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of the export and exit.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Export the locked assets for the next stage: JSON, YAML or an HTML contact sheet."""
    from . import export

    if schema:
        print_json(export.schema())
        return
    text, written = export.export(_open(project), format_, out, draft=draft)
    if written is None:
        sys.stdout.write(text)
        return
    if format_.lower() == "html":
        sys.stdout.write(f"wrote the contact sheet: open {written.resolve().as_uri()}\n")
    else:
        sys.stdout.write(f"wrote {written}\n")
