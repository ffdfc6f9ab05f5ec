"""Rich renderings shared by several commands (tables, status panels); their tables come from
cli.app.new_table, so that piped they need no Rich."""

from __future__ import annotations

from typing import Any


def render_status(con, data: dict[str, Any]) -> None:
    from stage5cli.cli.app import new_table as Table  # noqa: N813  (Rich's Table on a terminal)
    from stage5cli.safe_text import esc

    style = data["style"]
    con.print(f"[bold]project[/] {esc(data['project'])}   [bold]branch[/] {esc(data['branch'])}   "
              f"[bold]stage 5[/] {data['status']}")
    if style:
        con.print(f"[bold]style[/] {esc(style['id'])} ({esc(style['name'])}) sha256 {style['sha256'][:12]}")
    else:
        con.print("[bold]style[/] [red]none locked[/] - run stage5 style list, then stage5 style lock ID")
    if data["script"]:
        con.print(f"[bold]script[/] {esc(data['script']['path'])}")
    t = Table(title="Assets")
    cols = (("type", None), ("total", "total"), ("image ok", "ok"), ("placeholder", "placeholder"),
            ("stale image", "image_stale"), ("no image", "no_image"), ("locked", "locked"),
            ("conflicts", "conflicts"), ("not in script", "stale"))
    for col, _ in cols:
        t.add_column(col, justify="right" if col != "type" else "left")
    for kind, c in data["assets"].items():
        t.add_row(kind, *(str(c[k]) for _, k in cols[1:]))
    con.print(t)
    render_blockers(con, data["blockers"], data["warnings"])


def render_blockers(con, blockers: list[dict], warnings: list[dict], limit: int = 25) -> None:
    """The grouped blockers and warnings: one row per cause with the one command that fixes it."""
    from stage5cli.cli.app import new_table as Table  # noqa: N813  (Rich's Table on a terminal)
    from stage5cli.safe_text import esc as escape

    for title, rows, colour in (("Blocks stage 5", blockers, "red"), ("Warnings", warnings, "yellow")):
        if not rows:
            continue
        t = Table(title=title, title_style=colour)
        t.section = True  # piped: introduced by a `# title` line (cli.app.console)
        for col in ("what", "assets", "fix"):
            t.add_column(col, overflow="fold")
        for r in rows[:limit]:
            names = r.get("assets") or []
            shown = ", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else "")
            t.add_row(escape(r["message"]), escape(shown or "-"), escape(r["fix"]))
        con.print(t)
