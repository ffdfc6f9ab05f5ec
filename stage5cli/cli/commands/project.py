"""The "Project" panel: init, status, style list|show|import|lock, branch create|list|switch, demo,
doctor."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from stage5cli.cli.app import (
    JsonOpt,
    ProjectOpt,
    app,
    branch_app,
    console,
    esc,
    open_project_opt,
    print_json,
    style_app,
)

# ---- project -------------------------------------------------------------------------------


@app.command(rich_help_panel="Project")
def init(
    directory: Annotated[Path | None, typer.Argument(help="Folder to create (default: current).")] = None,
) -> None:
    """Create a project folder: DIR/stage5.db and DIR/images/ (idempotent)."""
    from stage5cli.project import init_project

    project, created = init_project(directory)
    verb = "created" if created else "already a project:"
    console().print(f"{verb} {esc(project.root / 'stage5.db')}")
    if created:
        console().print("next: stage5 style list, then stage5 style lock ID")


@app.command(rich_help_panel="Project")
def status(
    project: ProjectOpt = None,
    json_: JsonOpt = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 0 only when stage 5 is locked, else 3.")] = False,
) -> None:
    """Branch, locked style, script, asset counts and what blocks stage 5."""
    from stage5cli.readiness import status as project_status

    p = open_project_opt(project)
    data = project_status(p)
    if json_:
        print_json(data)
    else:
        from stage5cli.render import render_status

        render_status(console(lean=True), data)
    if check and data["status"] != "locked":
        if not json_:
            reasons = "; ".join(f"{b['message']}: {b['fix']}" for b in data["blockers"][:3]
                                ) or "run stage5 lock-all"
            sys.stderr.write(f"error: stage 5 is not locked: {reasons}\n")
        raise typer.Exit(3)


# ---- styles --------------------------------------------------------------------------------


def _maybe_project(project: Path | None):
    from stage5cli.project import DB_NAME, open_project, resolve_dir

    root = resolve_dir(project)
    if project is None and not (root / DB_NAME).is_file():
        return None
    return open_project(project)


@style_app.command("list")
def style_list(project: ProjectOpt = None, json_: JsonOpt = False) -> None:
    """List the built-in and imported style capsules."""
    from stage5cli.project import available_styles

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
        t.add_row(esc(c.id) + mark, esc(c.name), esc(origin), esc(c.description))
    console().print(t)


@style_app.command("show")
def style_show(
    style_id: Annotated[str, typer.Argument(metavar="ID", help="Style id (see stage5 style list).")],
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one style capsule in full."""
    from stage5cli.project import find_style

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

    # written as is (never through Rich): valid YAML on a terminal, in a pipe and in a file
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=float("inf")))


@style_app.command("import")
def style_import(
    file: Annotated[Path, typer.Argument(metavar="FILE.yaml", help="A style capsule YAML file.")],
    project: ProjectOpt = None,
) -> None:
    """Import a style capsule YAML file into the project (validated)."""
    from stage5cli.project import import_style

    capsule = import_style(open_project_opt(project), file)
    console().print(f"imported style {esc(capsule.id)} ({esc(capsule.name)}); lock it with stage5 style lock {esc(capsule.id)}")


@style_app.command("lock")
def style_lock(
    style_id: Annotated[str, typer.Argument(metavar="ID", help="Style id to lock on this branch.")],
    project: ProjectOpt = None,
) -> None:
    """Lock a visual style on the active branch (a snapshot; changes only via a new branch)."""
    from stage5cli.project import lock_style

    p = open_project_opt(project)
    row, changed = lock_style(p, style_id)
    if changed:
        console().print(f"locked style {esc(row['style_id'])} ({esc(row['name'])}) sha256 {row['sha256'][:12]} "
                        f"on branch {esc(p.branch()['name'])}")
    else:
        console().print(f"style {esc(row['style_id'])} is already locked on branch {esc(p.branch()['name'])}")


# ---- branches ------------------------------------------------------------------------------


@branch_app.command("create")
def branch_create(
    name: Annotated[str, typer.Argument(help="New branch name.")],
    style: Annotated[str | None, typer.Option("--style", help="Style id to lock on the new branch (default: keep the current branch's style).")] = None,
    no_style: Annotated[bool, typer.Option("--no-style", help="Start the branch without a style.")] = False,
    no_switch: Annotated[bool, typer.Option("--no-switch", help="Stay on the current branch.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Create a branch: copies the current branch's assets (unlocked) and its style (or --style ID)."""
    from stage5cli.errors import UsageError
    from stage5cli.project import create_branch

    if style and no_style:
        raise UsageError("--style and --no-style exclude each other")
    p = open_project_opt(project)
    b = create_branch(p, name, style, switch=not no_switch, keep_style=not no_style)
    where = "" if no_switch else "; now on it"
    locked = p.locked_style(b["id"])
    kept = f" with style {esc(locked[0]['style_id'])}" if locked else " without a style"
    console().print(f"created branch {esc(b['name'])}{kept}{where}")


@branch_app.command("list")
def branch_list(project: ProjectOpt = None, json_: JsonOpt = False) -> None:
    """List branches with their style, status and asset count."""
    from stage5cli.project import list_branches

    rows = list_branches(open_project_opt(project))
    if json_:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title="Branches")
    for col in ("", "name", "parent", "style", "status", "assets"):
        t.add_column(col)
    for r in rows:
        t.add_row("*" if r["active"] else "", esc(r["name"]), esc(r["parent"] or ""),
                  esc(r["style_id"] or "-"), r["status"], str(r["assets"]))
    console().print(t)


@branch_app.command("switch")
def branch_switch(
    name: Annotated[str, typer.Argument(help="Branch to make active.")],
    project: ProjectOpt = None,
) -> None:
    """Make another branch the active one."""
    from stage5cli.project import switch_branch

    b = switch_branch(open_project_opt(project), name)
    console().print(f"now on branch {esc(b['name'])}")



@app.command(rich_help_panel="Project")
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to build the demo project (recreated).")] = Path("demo-project"),
    json_: JsonOpt = False,
) -> None:
    """Run the whole flow offline on a bundled script: init, style, extract, images, lock-all, export."""
    from stage5cli.demo import run_demo

    con = console()
    # plain text, one line per step, never wrapped mid-phrase by Rich (a terminal wraps it)
    result = run_demo(directory, (lambda s: None) if json_ else
                      (lambda s: con.print(esc(s), soft_wrap=True)))
    if json_:
        print_json(result)
    elif "contact_sheet" in result:
        con.print(f"open {esc(Path(result['contact_sheet']).resolve().as_uri())} in a browser")



@app.command(rich_help_panel="Project")
def doctor(
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe to repair.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="Check keys for this model (default $STAGE5_MODEL).")] = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check the project (integrity, migrations, images, stuck jobs) and the environment."""
    from stage5cli.doctor import run as run_doctor
    from stage5cli.project import resolve_dir

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
            t.add_row(esc(c.name), mark, esc(c.detail))
        console().print(t)
        if not report.ok and not fix and any(c.fixable and not c.ok for c in report.checks):
            console().print("run stage5 doctor --fix to repair what is safe to repair")
    if not report.ok:
        raise typer.Exit(1)
