"""Rich renderings shared by several commands (tables, status panels)."""

from __future__ import annotations

from typing import Any


def render_status(con, data: dict[str, Any]) -> None:
    from rich.table import Table

    style = data["style"]
    con.print(f"[bold]project[/] {data['project']}   [bold]branch[/] {data['branch']}   "
              f"[bold]stage 5[/] {data['status']}")
    if style:
        con.print(f"[bold]style[/] {style['id']} ({style['name']}) sha256 {style['sha256'][:12]}")
    else:
        con.print("[bold]style[/] [red]none locked[/] - run stage5 style list, then stage5 style lock ID")
    if data["script"]:
        con.print(f"[bold]script[/] {data['script']['path']}")
    t = Table(title="Assets")
    for col in ("type", "total", "with image", "locked", "conflicts", "stale"):
        t.add_column(col, justify="right" if col != "type" else "left")
    for kind, c in data["assets"].items():
        t.add_row(kind, str(c["total"]), str(c["with_image"]), str(c["locked"]),
                  str(c["conflicts"]), str(c["stale"]))
    con.print(t)
    render_blockers(con, data["blockers"], data["warnings"])


def render_blockers(con, blockers: list[dict], warnings: list[dict], limit: int = 25) -> None:
    from rich.table import Table

    for title, rows, colour in (("Blocks stage 5", blockers, "red"), ("Warnings", warnings, "yellow")):
        if not rows:
            continue
        t = Table(title=title, title_style=colour)
        for col in ("asset", "missing", "fix"):
            t.add_column(col)
        for r in rows[:limit]:
            t.add_row(r["asset"] or "(project)", r["missing"], r["fix"])
        if len(rows) > limit:
            t.add_row("...", f"{len(rows) - limit} more", "stage5 status --json")
        con.print(t)
