"""`stage5 breakdown`: the scene breakdown (scenes, page eighths, assets by category)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stage5cli.cli.app import (
    JsonOpt,
    ProjectOpt,
    app,
    console,
    err_console,
    open_project_opt,
    print_json,
)


@app.command(rich_help_panel="Script and assets")
def breakdown(
    scene: Annotated[int | None, typer.Option("--scene", "-s", min=0, help="Only this scene (numbered from 1; 0 is the text before the first heading).")] = None,
    script: Annotated[Path | None, typer.Option("--script", help="Break down this script instead of the one last extracted.")] = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Scene breakdown: heading, INT/EXT, day/night, page, length in eighths, assets by category."""
    from stage5cli.breakdown.categories import by_id
    from stage5cli.breakdown.pages import format_eighths
    from stage5cli.breakdown.sheet import breakdown as build
    from stage5cli.cli.app import esc as escape

    b = build(open_project_opt(project), script=script, scene=scene)
    if json_:
        print_json(b.model_dump(mode="json"))
    else:
        con = console()
        title = b.script.get("title") or Path(b.script.get("path") or "").name
        con.print(f"[bold]{escape(title)}[/]  {len(b.scenes)} scenes  ~{b.pages} pages  "
                  f"({format_eighths(b.total_eighths)} pages in eighths)", highlight=False)
        if scene is not None:
            for r in b.scenes:
                con.print(f"scene {r.number}" + (f" (script {r.script_scene_number})"
                                                 if r.script_scene_number else "")
                          + f": {escape(r.heading)}  {r.int_ext or '-'}  {r.day_night or '-'}  "
                          f"page {r.page}  {r.length} pages", highlight=False)
                for cat, items in r.assets.items():
                    names = ", ".join(a.name + (f" (worn by {a.wearer})" if a.wearer else "")
                                      for a in items)
                    con.print(f"  [bold]{escape(by_id(cat).title)}[/]: {escape(names)}",
                              highlight=False)
        else:
            from rich.table import Table

            t = Table(title="Scene breakdown")
            for col in ("#", "sc.", "heading", "I/E", "D/N", "page", "length", "assets by category"):
                t.add_column(col, overflow="fold")
            for r in b.scenes:
                cells = "; ".join(f"{by_id(c).title}: " + ", ".join(a.name for a in items)
                                  for c, items in r.assets.items())
                t.add_row(str(r.number), r.script_scene_number or "", escape(r.heading),
                          r.int_ext or "", r.day_night or "", str(r.page), r.length,
                          escape(cells))
            con.print(t)
    for w in b.warnings:
        err_console().print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
