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
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from stage5cli.errors import EXIT_FAILED, EXIT_USAGE, Stage5Error


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


app = typer.Typer(
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

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project folder (default: $STAGE5_PROJECT or the current folder).",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ApiKeyEnvOpt = Annotated[str | None, typer.Option(
    "--api-key-env", metavar="VAR", help="Send the API key in $VAR (a server given with "
    "--api-base gets only $STAGE5_API_KEY or this, never the provider's default key).")]


# ---- output helpers ------------------------------------------------------------------------


def console():
    from rich.console import Console

    return Console(soft_wrap=False)


def err_console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, code: int) -> None:
    """One line on stderr and the exit code; never a traceback."""
    line = " ".join(str(message).split())
    sys.stderr.write(f"error: {line}\n")
    raise typer.Exit(code)


def open_project_opt(project: Path | None):
    """The project that `--project` names (default: $STAGE5_PROJECT or the current folder)."""
    from stage5cli.project import open_project

    return open_project(project)
