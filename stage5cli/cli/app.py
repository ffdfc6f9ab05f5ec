"""The Typer app, its sub-apps, the shared options and output helpers, and error handling (once).

Every command module in `stage5cli.cli.commands` imports from here and from the core, never from
another command module. Errors are turned into one stderr line and an exit code in one place,
`Stage5Group`, so commands just raise `Stage5Error` (or let anything else escape):

- a usage error of the command line (unknown option, missing argument): one line, exit 2;
- a `Stage5Error`: one line, its `exit_code` (with `STAGE5_DEBUG=1`: the traceback);
- anything unexpected: one line, exit 1 (with `STAGE5_DEBUG=1`: the traceback);
- Ctrl-C: "error: interrupted", exit 130.

Heavy modules (litellm, torch, diffusers, transformers, PIL, pypdf) and even sqlite-utils and
pydantic are imported inside the commands that need them, so `stage5 --help` starts fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from stage5cli.errors import EXIT_FAILED, EXIT_USAGE, Stage5Error
from stage5cli.render import PlainTable, new_table, no_terminal  # noqa: F401  (new_table: for commands)
from stage5cli.safe_text import esc, plain  # noqa: F401  (the output helpers every command uses)


class Stage5Group(TyperGroup):
    """Every stage5 error as one line on stderr with its exit code, never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer.exceptions import Abort
        from typer.exceptions import TyperException as ClickException

        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except ClickException as e:
            if not standalone_mode:
                raise
            fmt = getattr(e, "format_message", None)
            msg = " ".join((fmt() if fmt else str(e)).split())
            ctx = getattr(e, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            if msg:  # (no message: help was shown for a bare group command)
                sys.stderr.write(f"error: {msg}{where}\n")
            sys.exit(getattr(e, "exit_code", 0) or EXIT_USAGE)
        except Abort:
            if not standalone_mode:
                raise
            sys.stderr.write("error: aborted\n")
            sys.exit(EXIT_FAILED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        """Run the chosen command; its errors become one stderr line and an exit code.

        Only the outermost group handles them (a sub-app such as `style` is invoked inside it);
        Click's own exceptions (usage errors, `typer.Exit`, `typer.Abort`) pass through to `main`.
        """
        if ctx.parent is not None:
            return super().invoke(ctx)
        from typer.exceptions import Abort, Exit
        from typer.exceptions import TyperException as ClickException

        try:
            return super().invoke(ctx)
        except (Exit, Abort, ClickException, SystemExit):
            raise
        except Stage5Error as e:
            if os.environ.get("STAGE5_DEBUG"):
                raise
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            sys.stderr.write("error: interrupted\n")
            raise typer.Exit(130) from None
        except Exception as e:  # noqa: BLE001 - the last line of defence
            if os.environ.get("STAGE5_DEBUG"):
                raise
            from stage5cli.errors import describe_unexpected

            fail(describe_unexpected(e), EXIT_FAILED)
        finally:
            from stage5cli.db import close_all

            close_all()


ROOT_VALUE_OPTIONS = ("-p", "--project")  # the root options that take a value


def invoked_name(args: list[str]) -> str | None:
    """The command (or sub-app) `args` invoke, past the root options (`-p DIR`); None where
    the whole tree is needed: `--help`, `--version`, no command, `--`, or an unknown option."""
    it = iter(args)
    for tok in it:
        if tok in ROOT_VALUE_OPTIONS:
            next(it, None)
        elif tok.startswith("--project=") or (tok.startswith("-p") and not tok.startswith("--")):
            continue
        elif tok.startswith("-"):
            return None
        else:
            return tok
    return None


class Stage5App(typer.Typer):
    """A Typer app that builds only the command it runs.

    Typer turns every registered command into a Click command (reading its signature and
    annotations) before it dispatches: ~100 ms for the whole tree, on every run. When the
    command line names a registered command or sub-app, only that one is built, under the same
    root group, callback and settings; `--help`, `--version`, completion, an unknown command
    and anything else get the whole tree, so their output is Click's own.
    `tests/test_cli_lean.py` checks that both register the same commands and options."""

    def lean(self, name: str) -> typer.Typer | None:
        """A copy of this app holding only the command or sub-app `name` (None: not one)."""
        import copy

        from typer.main import get_command_name

        commands = [c for c in self.registered_commands
                    if (c.name or get_command_name(c.callback.__name__)) == name]
        groups = [g for g in self.registered_groups if g.name == name]
        if not commands and not groups:
            return None
        out = copy.copy(self)
        out.registered_commands, out.registered_groups = commands, groups
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        argv = kwargs.get("args", args[0] if args else None)
        argv = sys.argv[1:] if argv is None else list(argv)
        name = invoked_name(argv)
        completing = any(k.endswith("_COMPLETE") for k in os.environ)
        lean = None if name is None or completing else self.lean(name)
        return typer.Typer.__call__(lean or self, *args, **kwargs)


app = Stage5App(
    cls=Stage5Group,
    name="stage5",
    help="Turn a screenplay into a locked, consistent set of visual reference assets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
style_app = typer.Typer(cls=Stage5Group, help="Visual style capsules: list, show, import, lock.",
                        no_args_is_help=True)
branch_app = typer.Typer(cls=Stage5Group, help="Branches: the only way to change a locked style.",
                         no_args_is_help=True)
library_app = typer.Typer(cls=Stage5Group, help="The global, cross-project asset library.",
                          no_args_is_help=True)
app.add_typer(style_app, name="style", rich_help_panel="Project")
app.add_typer(branch_app, name="branch", rich_help_panel="Project")
app.add_typer(library_app, name="library", rich_help_panel="Library")

def _project_or_global(ctx: typer.Context, value: Path | None) -> Path | None:
    """A command's own `-p` wins; else the one given before the command (`stage5 -p DIR cmd`)."""
    if value is not None:
        return value
    root = ctx.find_root()
    return (root.obj or {}).get("project") if isinstance(root.obj, dict) else None


ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project folder (default: $STAGE5_PROJECT or the current folder).",
                 show_default=False, callback=_project_or_global),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ApiKeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", metavar="VAR", help="Send the API key in $VAR (a server given with "
    "--api-base gets only $STAGE5_API_KEY or this, never the provider's default key).")]
MaxAssetsOpt = Annotated[int | None, typer.Option(
    "--max-assets", min=1, max=1_000_000, show_default=False,
    help="Keep at most this many assets of each kind, the most-seen (default 2000).")]


def _version(value: bool) -> None:
    if value:
        from stage5cli import __version__

        sys.stdout.write(f"stage5 {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    project: Annotated[Path | None, typer.Option(
        "--project", "-p", show_default=False,
        help="Project folder for the command (also accepted after the command name).")] = None,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Print the stage5 version and exit.")] = False,
) -> None:
    """Turn a screenplay into a locked, consistent set of visual reference assets."""
    ctx.obj = {"project": project}


# ---- output helpers ------------------------------------------------------------------------
#
# Every line stage5 prints goes through `console()` / `err_console()`, and every piece of user
# data in it (asset names, script text, provider messages, paths) through `esc()`: Rich markup
# in data (`[red]X`, `[/]x`, `stage5[pdf]`) is printed as text, and control characters
# (`ESC[2J`) are shown as `\x1b`, never sent to the terminal. On a terminal tables are Rich
# tables; when stdout is not a terminal (a pipe, a file) there is no colour, no wrapping, no
# truncation and no box drawing: each table is tab-separated rows with a header row first.

def _cell_text(cell: Any) -> str:
    if isinstance(cell, str) and (text := markup_plain(cell)) is not None:
        return " ".join(text.split())  # what Rich makes of it, without Rich (markup_plain)
    from rich.text import Text

    if isinstance(cell, Text):
        text = cell.plain
    elif isinstance(cell, str):
        text = Text.from_markup(cell).plain
    else:
        text = str(cell if cell is not None else "")
    return " ".join(text.replace("\t", " ").split())


def tsv(table: Any) -> str:
    """A Rich Table as tab-separated text: the header row, then one line per row."""
    lines = ["\t".join(_cell_text(c.header) for c in table.columns)]
    cells = [list(c._cells) for c in table.columns]
    for i in range(table.row_count):
        lines.append("\t".join(_cell_text(col[i]) if i < len(col) else "" for col in cells))
    return "\n".join(lines) + "\n"


_MARKUP_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")  # rich.markup.RE_TAGS


def markup_plain(text: str) -> str | None:
    """`text` (Rich markup) as Rich prints it where there is no terminal: the tags dropped.
    `:emoji:` codes are replaced as Rich does (its own small replacer, not rich.console).
    None where only Rich can say: a backslash escape, a tab, a control character, a closing
    tag that closes nothing (Rich's error)."""
    if "\\" in text or not text.replace("\n", "").isprintable():
        return None
    if ":" in text:
        from rich._emoji_replace import _emoji_replace as emoji
    else:
        def emoji(segment: str) -> str:
            return segment
    if "[" not in text:
        return emoji(text)
    out: list[str] = []
    pos = 0
    open_tags: list[str] = []
    for m in _MARKUP_TAG.finditer(text):
        out.append(emoji(text[pos:m.start()]))
        pos = m.end()
        name = m.group(3).partition("=")[0].strip()
        if not name.startswith("/"):
            open_tags.append(name.lower())
        elif not name[1:].strip():
            if not open_tags:
                return None
            open_tags.pop()
        elif name[1:].strip().lower() in open_tags:
            closing = name[1:].strip().lower()
            del open_tags[len(open_tags) - 1 - open_tags[::-1].index(closing)]
        else:
            return None
    out.append(emoji(text[pos:]))
    return "".join(out)


class PlainConsole:
    """console(lean=True) where stdout is not a terminal: the same bytes as the Rich console
    below prints there (plain text, TSV tables), without importing Rich; anything it cannot
    vouch for (other objects or options, markup only Rich can read) goes to that console."""

    is_terminal = False

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr
        self.started = False
        self._rich: Any = None

    @property
    def file(self):
        return sys.stderr if self.stderr else sys.stdout

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if len(objects) == 1 and not kwargs.keys() - {"overflow", "highlight", "soft_wrap"}:
            obj = objects[0]
            if isinstance(obj, PlainTable):
                if (self.started or obj.section) and obj.title:
                    self.file.write(f"# {_cell_text(obj.title)}\n")
                self.file.write(tsv(obj))
                self.file.flush()
                self.started = True
                return
            text = markup_plain(obj) if isinstance(obj, str) else None
            if text is not None:
                self.file.write(text + "\n")
                self.file.flush()
                self.started = True
                return
        if self._rich is None:
            self._rich = _console_class()(stderr=self.stderr, soft_wrap=self.stderr,
                                          highlight=False)
        self._rich.started = self.started
        self._rich.print(*objects, **kwargs)
        self.started = self._rich.started


def _console_class():
    from rich.console import Console
    from rich.table import Table

    class Out(Console):
        """A Console that prints tables as TSV (and never wraps) when it is not a terminal."""

        started = False  # has this console printed anything yet?

        def print(self, *objects: Any, **kwargs: Any) -> None:
            if self.is_terminal:
                objects = tuple(o.as_rich() if isinstance(o, PlainTable) else o for o in objects)
                return super().print(*objects, **kwargs)
            kwargs.setdefault("soft_wrap", True)
            kwargs.setdefault("highlight", False)
            kwargs.pop("overflow", None)
            for obj in objects:
                if isinstance(obj, Table | PlainTable):
                    # a table that follows other output, or is one section of several
                    # (status, lock-all's blockers), says what it is: `# title`
                    if (self.started or getattr(obj, "section", False)) and obj.title:
                        self.file.write(f"# {_cell_text(obj.title)}\n")
                    self.file.write(tsv(obj))
                    self.file.flush()
                else:
                    super().print(obj, **kwargs)
                self.started = True

    return Out


def console(*, lean: bool = False):
    """stdout: Rich on a terminal; plain text and TSV tables otherwise. `lean`: a command that
    prints only markup strings and `new_table`s (status, review, show) gets a PlainConsole
    there, so it never imports Rich (~30 ms); its output is the same."""
    if lean and no_terminal(sys.stdout):
        return PlainConsole()
    return _console_class()(soft_wrap=False, highlight=False)


def err_console():
    return _console_class()(stderr=True, soft_wrap=True, highlight=False)


def table(title: str | None = None, *columns: str, **kwargs: Any):
    """A Rich Table with `columns` (folded, never truncated) that `console().print` renders."""
    from rich.table import Table

    t = Table(title=esc(title) if title else None, **kwargs)
    for col in columns:
        t.add_column(col, overflow="fold")
    return t


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def confirm(question: str) -> None:
    """Ask `question` on a terminal (no: "error: aborted", exit 1); without one (a pipe, CI)
    refuse at once: "not a terminal: pass --yes", exit 2. STAGE5_ASSUME_TTY=1 forces asking."""
    if not sys.stdin.isatty() and not os.environ.get("STAGE5_ASSUME_TTY"):
        from stage5cli.errors import UsageError

        raise UsageError(f"not a terminal: pass --yes to {plain(question).rstrip('?')}")
    typer.confirm(plain(question), abort=True)


def fail(message: str, code: int) -> None:
    """One line on stderr and the exit code; never a traceback."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"error: {line}\n")
    raise typer.Exit(code)


def open_project_opt(project: Path | None):
    """The project that `--project` names (default: $STAGE5_PROJECT or the current folder)."""
    from stage5cli.project import open_project

    return open_project(project)
