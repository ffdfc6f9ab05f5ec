"""Rich renderings shared by several commands (tables, status panels). Their tables come from
`new_table`: a Rich Table on a terminal, a PlainTable (no Rich) where stdout is not one, which
the CLI console prints as TSV (stage5cli.cli.app)."""

from __future__ import annotations

import os
import sys
from typing import Any


class PlainTable:
    """A table as `new_table` makes it where stdout is not a terminal: title, columns and rows,
    all that the TSV form needs, without importing Rich. On a terminal (`as_rich`) it becomes
    the Rich Table it stands for, with the same arguments."""

    class Column:
        __slots__ = ("header", "kwargs", "_cells")

        def __init__(self, header: str, kwargs: dict[str, Any]) -> None:
            self.header, self.kwargs, self._cells = header, kwargs, []

    def __init__(self, title: str | None = None, **kwargs: Any) -> None:
        self.title, self.kwargs = title, kwargs
        self.columns: list[PlainTable.Column] = []
        self.rows: list[tuple[Any, ...]] = []
        self.section = False

    def add_column(self, header: str = "", **kwargs: Any) -> None:
        self.columns.append(self.Column(header, kwargs))

    def add_row(self, *cells: Any) -> None:
        self.rows.append(cells)
        for col, cell in zip(self.columns, cells, strict=False):
            col._cells.append(cell)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def as_rich(self):
        from rich.table import Table

        t = Table(title=self.title, **self.kwargs)
        for c in self.columns:
            t.add_column(c.header, **c.kwargs)
        for r in self.rows:
            t.add_row(*r)
        t.section = self.section
        return t


def no_terminal(stream: Any) -> bool:
    """True only where Rich would certainly find no terminal on `stream`: not a tty, no
    variable that makes Rich assume one, not inside Jupyter/IPython."""
    import builtins

    if any(v in os.environ for v in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")):
        return False
    if hasattr(builtins, "get_ipython") or "idlelib" in sys.modules:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is not None and not isatty()
    except ValueError:  # a closed stream
        return False


def new_table(title: str | None = None, **kwargs: Any):
    """A table for `console().print` with `title` as given (markup, already escaped): a Rich
    Table on a terminal, a PlainTable (printed as TSV, no Rich) otherwise."""
    if no_terminal(sys.stdout):
        return PlainTable(title, **kwargs)
    from rich.table import Table

    return Table(title=title, **kwargs)


def render_status(con, data: dict[str, Any]) -> None:
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
    t = new_table("Assets")
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
    from stage5cli.safe_text import esc as escape

    for title, rows, colour in (("Blocks stage 5", blockers, "red"), ("Warnings", warnings, "yellow")):
        if not rows:
            continue
        t = new_table(title, title_style=colour)
        t.section = True  # piped: introduced by a `# title` line (cli.app.console)
        for col in ("what", "assets", "fix"):
            t.add_column(col, overflow="fold")
        for r in rows[:limit]:
            names = r.get("assets") or []
            shown = ", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else "")
            t.add_row(escape(r["message"]), escape(shown or "-"), escape(r["fix"]))
        con.print(t)
