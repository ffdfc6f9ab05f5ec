"""The `stage5` command line: argument parsing, Rich output, exit codes. No business logic.

Heavy modules (litellm, torch, diffusers, transformers, PIL, pypdf) and even sqlite-utils and
pydantic are imported inside the commands that need them, so `stage5 --help` starts fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from .errors import EXIT_FAILED, EXIT_USAGE, Stage5Error

F = TypeVar("F", bound=Callable[..., Any])


class Stage5Group(TyperGroup):
    """Usage errors as one line on stderr (exit 2), like every other stage5 error."""

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


def handled(fn: F) -> F:
    """Turn Stage5Error (and anything unexpected) into one stderr line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
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
            from .errors import describe_unexpected

            fail(describe_unexpected(e), EXIT_FAILED)
        finally:
            from .db import close_all

            close_all()

    return wrapper  # type: ignore[return-value]


def _open(project: Path | None):
    from .project import open_project

    return open_project(project)


# ---- project -------------------------------------------------------------------------------


@app.command(rich_help_panel="Project")
@handled
def init(
    directory: Annotated[Path | None, typer.Argument(help="Folder to create (default: current).")] = None,
) -> None:
    """Create a project folder: DIR/stage5.db and DIR/images/ (idempotent)."""
    from .project import init_project

    project, created = init_project(directory)
    verb = "created" if created else "already a project:"
    console().print(f"{verb} {project.root / 'stage5.db'}")
    if created:
        console().print("next: stage5 style list, then stage5 style lock ID")


@app.command(rich_help_panel="Project")
@handled
def status(
    project: ProjectOpt = None,
    json_: JsonOpt = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 0 only when stage 5 is locked, else 3.")] = False,
) -> None:
    """Branch, locked style, script, asset counts and what blocks stage 5."""
    from .project import status as project_status

    p = _open(project)
    data = project_status(p)
    if json_:
        print_json(data)
    else:
        from .render import render_status

        render_status(console(), data)
    if check and data["status"] != "locked":
        if not json_:
            reasons = "; ".join(f"{b['message']}: {b['fix']}" for b in data["blockers"][:3]
                                ) or "run stage5 lock-all"
            sys.stderr.write(f"error: stage 5 is not locked: {reasons}\n")
        raise typer.Exit(3)


# ---- styles --------------------------------------------------------------------------------


def _maybe_project(project: Path | None):
    from .project import DB_NAME, open_project, resolve_dir

    root = resolve_dir(project)
    if project is None and not (root / DB_NAME).is_file():
        return None
    return open_project(project)


@style_app.command("list")
@handled
def style_list(project: ProjectOpt = None, json_: JsonOpt = False) -> None:
    """List the built-in and imported style capsules."""
    from .project import available_styles

    p = _maybe_project(project)
    styles = available_styles(p)
    locked = p.locked_style() if p else None
    locked_id = locked[0]["style_id"] if locked else None
    if json_:
        print_json([
            {**c.model_dump(mode="json"), "origin": origin, "sha256": c.sha256(),
             "locked": c.id == locked_id}
            for c, origin in styles.values()
        ])
        return
    from rich.table import Table

    t = Table(title="Style capsules")
    for col in ("id", "name", "origin", "description"):
        t.add_column(col)
    for c, origin in styles.values():
        mark = " (locked)" if c.id == locked_id else ""
        t.add_row(c.id + mark, c.name, origin, c.description)
    console().print(t)


@style_app.command("show")
@handled
def style_show(
    style_id: Annotated[str, typer.Argument(metavar="ID", help="Style id (see stage5 style list).")],
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one style capsule in full."""
    from .project import find_style

    p = _maybe_project(project)
    locked = p.locked_style() if p else None
    if locked and locked[1].id == style_id:
        capsule = locked[1]  # what this project actually uses: the snapshot
    else:
        capsule = find_style(p, style_id)
    data = {**capsule.model_dump(mode="json"), "sha256": capsule.sha256()}
    if json_:
        print_json(data)
        return
    import yaml

    console().print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), markup=False)


@style_app.command("import")
@handled
def style_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.yaml", help="A style capsule YAML file.")],
    project: ProjectOpt = None,
) -> None:
    """Import a style capsule YAML file into the project (validated)."""
    from .project import import_style

    capsule = import_style(_open(project), file)
    console().print(f"imported style {capsule.id} ({capsule.name}); lock it with stage5 style lock {capsule.id}")


@style_app.command("lock")
@handled
def style_lock(
    style_id: Annotated[str, typer.Argument(metavar="ID", help="Style id to lock on this branch.")],
    project: ProjectOpt = None,
) -> None:
    """Lock a visual style on the active branch (a snapshot; changes only via a new branch)."""
    from .project import lock_style

    p = _open(project)
    row, changed = lock_style(p, style_id)
    if changed:
        console().print(f"locked style {row['style_id']} ({row['name']}) sha256 {row['sha256'][:12]} "
                        f"on branch {p.branch()['name']}")
    else:
        console().print(f"style {row['style_id']} is already locked on branch {p.branch()['name']}")


# ---- branches ------------------------------------------------------------------------------


@branch_app.command("create")
@handled
def branch_create(
    name: Annotated[str, typer.Argument(help="New branch name.")],
    style: Annotated[str | None, typer.Option("--style", help="Style id to lock on the new branch.")] = None,
    no_switch: Annotated[bool, typer.Option("--no-switch", help="Stay on the current branch.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Create a branch: copies the current branch's assets (unlocked), optionally with a new style."""
    from .project import create_branch

    p = _open(project)
    b = create_branch(p, name, style, switch=not no_switch)
    where = "" if no_switch else "; now on it"
    console().print(f"created branch {b['name']}{' with style ' + style if style else ''}{where}")


@branch_app.command("list")
@handled
def branch_list(project: ProjectOpt = None, json_: JsonOpt = False) -> None:
    """List branches with their style, status and asset count."""
    from .project import list_branches

    rows = list_branches(_open(project))
    if json_:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title="Branches")
    for col in ("", "name", "parent", "style", "status", "assets"):
        t.add_column(col)
    for r in rows:
        t.add_row("*" if r["active"] else "", r["name"], r["parent"] or "", r["style_id"] or "-",
                  r["status"], str(r["assets"]))
    console().print(t)


@branch_app.command("switch")
@handled
def branch_switch(
    name: Annotated[str, typer.Argument(help="Branch to make active.")],
    project: ProjectOpt = None,
) -> None:
    """Make another branch the active one."""
    from .project import switch_branch

    b = switch_branch(_open(project), name)
    console().print(f"now on branch {b['name']}")



@app.command(rich_help_panel="Project")
@handled
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to build the demo project (recreated).")] = Path("demo-project"),
    json_: JsonOpt = False,
) -> None:
    """Run the whole flow offline on a bundled script: init, style, extract, images, lock-all, export."""
    from .demo import run_demo

    con = console()
    result = run_demo(directory, (lambda s: None) if json_ else con.print)
    if json_:
        print_json(result)
    elif "contact_sheet" in result:
        con.print(f"open {Path(result['contact_sheet']).resolve().as_uri()} in a browser")



@app.command(rich_help_panel="Project")
@handled
def doctor(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe to repair.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="Check keys for this model (default $STAGE5_MODEL).")] = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check the project (integrity, migrations, images, stuck jobs) and the environment."""
    from .doctor import run as run_doctor
    from .project import resolve_dir

    report = run_doctor(resolve_dir(project), fix=fix, model=model or os.environ.get("STAGE5_MODEL"))
    if json_:
        print_json(report.as_json())
    else:
        from rich.table import Table

        t = Table(title="stage5 doctor")
        for col in ("check", "", "detail"):
            t.add_column(col, overflow="fold")
        for c in report.checks:
            mark = "[green]ok[/]" if c.ok else ("[yellow]fixed[/]" if c.fixed else "[red]problem[/]")
            t.add_row(c.name, mark, c.detail)
        console().print(t)
        if not report.ok and not fix and any(c.fixable and not c.ok for c in report.checks):
            console().print("run stage5 doctor --fix to repair what is safe to repair")
    if not report.ok:
        raise typer.Exit(1)


# The other command groups register themselves on `app` (kept in their own modules).
# Imported in workflow order: that is the order of the help panels.
from . import cli_extract  # noqa: E402,F401,I001
from . import cli_curation  # noqa: E402,F401,I001
from . import cli_images  # noqa: E402,F401,I001
from . import cli_lock  # noqa: E402,F401,I001
from . import cli_library  # noqa: E402,F401,I001
from . import cli_batch  # noqa: E402,F401,I001
