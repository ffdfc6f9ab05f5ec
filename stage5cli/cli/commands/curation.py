"""Review and curation commands: show, edit, describe, add, remove, merge, conflicts, history, undo.

Thin: parse arguments, call stage5cli.curation / stage5cli.history, render with Rich.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from stage5cli.cli.app import (
    ApiKeyEnvOpt,
    JsonOpt,
    ProjectOpt,
    app,
    confirm,
    console,
    new_table,
    open_project_opt,
    print_json,
)

AssetArg = Annotated[str, typer.Argument(metavar="ASSET", help="Asset id, name or alias (case-insensitive).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help="litellm model (default $STAGE5_MODEL; without one, the offline rule).")]
ApiBaseOpt = Annotated[str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")]


def _e(text: Any) -> str:
    from stage5cli.cli.app import esc

    return esc(text)


def _brief(v) -> str:
    tags = [v.type, f"id {v.id}"]
    tags += [t for t, on in (("locked", v.locked), ("priority", v.is_priority), (v.origin, v.origin != "extracted"),
                             ("stale", v.stale), ("conflicts", v.has_conflicts)) if on]
    return f"[bold]{_e(v.name)}[/] ({_e(', '.join(tags))})"


# ---- show ----------------------------------------------------------------------------------


@app.command(rich_help_panel="Script and assets")
def show(asset: AssetArg, project: ProjectOpt = None, json_: JsonOpt = False) -> None:
    """Everything about one asset: description, aliases, metadata, mentions, images and jobs."""
    from stage5cli.readiness import asset_detail  # (curation.show without curation's imports)

    d = asset_detail(open_project_opt(project), asset)
    if json_:
        print_json(d.model_dump(mode="json"))
        return
    con = console(lean=True)
    con.print(_brief(d))
    con.print(f"[bold]aliases[/] {_e(', '.join(d.aliases) or '-')}")
    conf = "-" if d.confidence_score is None else f"{d.confidence_score:.2f}"
    con.print(f"[bold]confidence[/] {conf}   [bold]extractor[/] {_e(d.extractor or '-')}"
              f"{' (' + _e(d.model) + ')' if d.model else ''}   [bold]user-owned[/] "
              f"{_e(', '.join(d.user_fields) or '-')}")
    con.print(f"[bold]description[/] {_e(d.description or '(none)')}")
    if d.has_conflicts:
        con.print(f"[bold red]conflicts[/] {_e(d.conflict_details or '(no details)')}")
    res = d.metadata.get("conflict_resolution")
    if res:
        con.print(f"[bold]conflict resolved[/] by {_e(res.get('by'))}: {_e(res.get('reasoning') or res.get('details') or '')}")
    if d.metadata.get("merged_from"):
        con.print(f"[bold]merged from[/] {_e(', '.join(d.metadata['merged_from']))}")
    image = d.image_key_url or "-"
    con.print(f"[bold]image[/] {_e(image)}{'' if d.image_exists or not d.image_key_url else ' [red](file missing)[/]'}"
              f"   [bold]state[/] {_e(d.image_state or '-')}"
              f"{' (' + _e(d.image_backend) + ')' if d.image_backend else ''}")
    sent = next((j.prompt for j in reversed(d.jobs) if j.prompt and j.image_path == d.image_key_url), None)
    if sent and sent.get("limit"):
        con.print(f"[bold]prompt[/] {sent.get('count')}/{sent['limit']} {_e(sent.get('unit'))} "
                  f"({_e(sent.get('encoder'))}); left out: {_e('; '.join(sent.get('dropped') or []) or 'nothing')}")
    t = new_table(f"Mentions ({len(d.mentions)} in scenes {_e(', '.join(map(str, d.scenes)) or '-')})")
    for col in ("scene", "text", "context"):
        t.add_column(col, overflow="fold")
    for m in d.mentions:
        t.add_row(str(m.scene_number), _e(m.text), _e(m.context))
    con.print(t)
    if d.jobs:
        j = new_table("Image jobs")
        for col in ("id", "status", "backend", "model", "size", "seed", "image", "finished"):
            j.add_column(col)
        for job in d.jobs:
            path = _e(job.image_path or "-") + ("" if job.image_exists or not job.image_path else " (missing)")
            j.add_row(str(job.id), job.status, _e(job.backend), _e(job.model or "-"),
                      f"{job.width}x{job.height}", str(job.seed if job.seed is not None else "-"),
                      path, _e(job.finished_at or job.error or "-"))
        con.print(j)


# ---- edit ----------------------------------------------------------------------------------


def _editor_argv() -> list[str]:
    import shlex

    from stage5cli.errors import UsageError

    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL")
    if not editor or not editor.strip():
        raise UsageError("no editor: set $EDITOR (or $VISUAL), or pass field flags such as "
                         "--description TEXT")
    try:
        return shlex.split(editor)
    except ValueError as e:
        raise UsageError(f"cannot read $EDITOR {editor!r}: {e}") from None


def run_editor(text: str) -> str:
    """Open `text` in $EDITOR (or $VISUAL) in a temporary .yaml file; return what was saved."""
    import subprocess
    import tempfile

    from stage5cli.errors import Stage5Error, UsageError

    argv = _editor_argv()
    fd, name = tempfile.mkstemp(prefix="stage5-edit-", suffix=".yaml")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            rc = subprocess.run([*argv, str(path)]).returncode
        except FileNotFoundError:
            raise UsageError(f"editor {argv[0]!r} not found: set $EDITOR to an installed editor"
                             ) from None
        except PermissionError:
            raise UsageError(f"editor {argv[0]!r} is not executable: set $EDITOR to an "
                             "installed editor") from None
        if rc != 0:
            raise Stage5Error(f"the editor {argv[0]} exited with status {rc}; nothing changed")
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise Stage5Error(f"cannot read the edited file: {e}") from None
    finally:
        path.unlink(missing_ok=True)


def _with_error(text: str, error: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.startswith("# error:")]
    return f"# error: {error}\n" + "\n".join(lines) + "\n"


def _edit_in_editor(p, asset: str):
    from stage5cli import curation
    from stage5cli.errors import UsageError

    row = curation.require_editable(p, asset, "edit")
    ref = str(row["id"])
    original = text = curation.edit_yaml(p, ref)
    con = console()
    while True:
        edited = run_editor(text)
        if edited == original:
            return None, []
        try:
            fields = curation.parse_edit(edited)
            return curation.edit(p, ref, name=fields["name"], asset_type=fields["asset_type"],
                                 description=fields["description"], aliases=fields["aliases"],
                                 is_priority=fields["is_priority"])
        except UsageError as e:
            con.print(f"[red]invalid edit:[/] {_e(e)}")
            if not typer.confirm("edit again?", default=True):
                raise UsageError(f"edit aborted ({e}); nothing changed") from None
            text = _with_error(edited, str(e))


@app.command(rich_help_panel="Script and assets")
def edit(
    asset: AssetArg,
    name: Annotated[str | None, typer.Option("--name", help="New name (the old one stays as an alias).")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d", help="New description.")] = None,
    type_: Annotated[str | None, typer.Option("--type", "-t", help="character, prop or location.")] = None,
    add_alias: Annotated[list[str] | None, typer.Option("--add-alias", help="Add an alias (repeatable).")] = None,
    remove_alias: Annotated[list[str] | None, typer.Option("--remove-alias", help="Remove an alias (repeatable).")] = None,
    priority: Annotated[bool | None, typer.Option("--priority/--no-priority", help="Mark as a priority asset, or not.")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c", help="Breakdown category: cast, background, props, wardrobe, vehicles, sets, ... (stage5 breakdown).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Edit an asset's fields; with no field flags, opens $EDITOR on a YAML view of it.

    Edited fields become user-owned: re-extraction never overwrites them.
    """
    from stage5cli import curation

    p = open_project_opt(project)
    flags = (name, description, type_, add_alias, remove_alias, priority)
    if category is not None:  # breakdown/edit.py: its own history entry, after the others
        from stage5cli.breakdown.edit import set_category

        view, changed = (curation.edit(p, asset, name=name, description=description,
                                       asset_type=type_, add_aliases=add_alias or [],
                                       remove_aliases=remove_alias or [], is_priority=priority)
                         if any(f is not None and f != [] for f in flags) else (None, []))
        view, cat_changed = set_category(p, str(view.id) if view else asset, category)
        changed = [*changed, *(["category"] if cat_changed else [])]
    elif all(f is None or f == [] for f in flags):
        view, changed = _edit_in_editor(p, asset)
    else:
        view, changed = curation.edit(p, asset, name=name, description=description,
                                      asset_type=type_, add_aliases=add_alias or [],
                                      remove_aliases=remove_alias or [], is_priority=priority)
    if not changed:
        console().print("nothing changed")
        return
    console().print(f"edited {_brief(view)}: {', '.join(changed)}")


# ---- describe ------------------------------------------------------------------------------


@app.command(rich_help_panel="Script and assets")
def describe(
    asset: AssetArg,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="litellm model (default $STAGE5_MODEL; without one, the built-in "
        "offline pass 2).")] = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    instructions: Annotated[str | None, typer.Option(
        "--instructions", "-i", help="Extra guidance for the model, e.g. 'she is in her sixties'.")] = None,
    project: ProjectOpt = None,
) -> None:
    """Regenerate one description (pass 2 for one asset); the old one stays in history."""
    from rich.table import Table

    from stage5cli import curation

    old, view, changed = curation.describe(open_project_opt(project), asset, model=model,
                                           api_base=api_base, instructions=instructions,
                                           api_key_env=api_key_env)
    if not changed:
        console().print(f"{_e(view.name)}: the regenerated description is the same; nothing changed")
        return
    t = Table(title=f"{_e(view.name)}: description", show_lines=True)
    t.add_column("before", ratio=1, overflow="fold")
    t.add_column("after", ratio=1, overflow="fold")
    t.add_row(_e(old or "(none)"), _e(view.description))
    con = console()
    con.print(t)
    con.print("undo with stage5 undo")


# ---- add / remove --------------------------------------------------------------------------


@app.command(rich_help_panel="Script and assets")
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the new asset.")],
    type_: Annotated[str, typer.Option("--type", "-t", help="character, prop or location.", show_default=False)],
    description: Annotated[str, typer.Option("--description", "-d", help="Its visual description.")] = "",
    alias: Annotated[list[str] | None, typer.Option("--alias", "-a", help="An alias (repeatable).")] = None,
    priority: Annotated[bool, typer.Option("--priority", help="Mark it as a priority asset.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Add an asset by hand (marked manual). A name already in use is refused."""
    from stage5cli import curation

    view = curation.add(open_project_opt(project), name, type_, description=description,
                        aliases=alias or [], is_priority=priority)
    console().print(f"added {_brief(view)}")


@app.command(rich_help_panel="Script and assets")
def remove(
    assets: Annotated[list[str], typer.Argument(metavar="ASSET...", help="Assets to remove (id, name or alias).")],
    yes: YesOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Remove assets with their mentions and jobs; their images go to images/.trash (undo restores)."""
    from stage5cli import curation

    p = open_project_opt(project)
    rows = {r["id"]: r for r in (curation.require_editable(p, a, "remove") for a in assets)}
    if not yes:
        names = ", ".join(f"{r['name']} (id {r['id']})" for r in rows.values())
        confirm(f"remove {names}?")
    names, files = curation.remove(p, [str(i) for i in rows])
    con = console()
    con.print(f"removed {_e(', '.join(names))}")
    for f in files:
        con.print(f"  moved {_e(f)} to the trash")
    con.print("undo with stage5 undo")


# ---- merge ---------------------------------------------------------------------------------


@app.command(rich_help_panel="Script and assets")
def merge(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="The asset that stays.")],
    sources: Annotated[list[str], typer.Argument(metavar="SOURCE...", help="Assets folded into TARGET and removed.")],
    yes: YesOpt = False,
    description_from: Annotated[str | None, typer.Option(
        "--description-from", metavar="SOURCE", help="Keep this source's description instead of TARGET's.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Allow merging assets of different types.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Merge duplicates: aliases, mentions and scenes unioned into TARGET, sources removed."""
    from stage5cli import curation

    p = open_project_opt(project)
    p.require_draft("merge assets")
    t, srcs, _ = curation.merge_plan(p, target, sources, description_from=description_from,
                                     force=force)
    if not yes:
        names = ", ".join(s["name"] for s in srcs)
        confirm(f"merge {names} into {t['name']}?")
    view = curation.merge(p, str(t["id"]), [str(s["id"]) for s in srcs],
                          description_from=description_from, force=force)
    con = console()
    con.print(f"merged {_e(', '.join(s['name'] for s in srcs))} into {_brief(view)}")
    con.print(f"  aliases {_e(', '.join(view.aliases) or '-')}; scenes "
              f"{_e(', '.join(map(str, view.scenes)) or '-')}")
    if view.has_conflicts:
        con.print(f"  conflicts: {_e(view.conflict_details)} (stage5 conflicts {_e(view.name)} --suggest)")


# ---- conflicts -----------------------------------------------------------------------------


def _render_suggestion(s) -> None:
    con = console()
    con.print(f"[bold]{_e(s.name)}[/] conflicts: {_e(s.conflict_details or '(no details)')}")
    for r in s.readings:
        con.print(f"  reading [bold]{_e(r.text)}[/]: scenes {_e(', '.join(map(str, r.scenes)) or '-')}")
    how = f"model {s.model}" if s.method == "llm" else f"rule: {s.method}"
    con.print(f"[bold]suggestion[/] ({_e(how)}): {_e(s.description or '(none)')}")
    con.print(f"[bold]why[/] {_e(s.reasoning)}")


@app.command(rich_help_panel="Script and assets")
def conflicts(
    asset: Annotated[str | None, typer.Argument(metavar="ASSET", help="One asset (default: list them all).")] = None,
    suggest: Annotated[bool, typer.Option("--suggest", help="Propose a resolution (the default with ASSET).")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Write the suggested description and clear the flag.")] = False,
    resolve: Annotated[str | None, typer.Option("--resolve", metavar="TEXT", help="Your own resolution: the new description.")] = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List assets with visual conflicts; suggest, apply or record a resolution for one."""
    from stage5cli import conflicts as conflict_ops
    from stage5cli.errors import UsageError

    p = open_project_opt(project)
    if asset is None:
        if suggest or apply or resolve is not None:
            raise UsageError("--suggest, --apply and --resolve need an ASSET")
        found = conflict_ops.list_conflicts(p)
        if json_:
            print_json([c.model_dump(mode="json") for c in found])
            return
        if not found:
            console().print("no conflicts")
            return
        from rich.table import Table

        t = Table(title=f"Conflicts ({len(found)})")
        for col in ("asset", "type", "details", "scenes involved"):
            t.add_column(col, overflow="fold")
        for c in found:
            t.add_row(_e(c.name), c.type, _e(c.conflict_details or "-"),
                      ", ".join(map(str, c.scenes_involved)))
        console().print(t)
        console().print("next: stage5 conflicts ASSET --suggest")
        return
    if apply and resolve is not None:
        raise UsageError("use either --apply or --resolve TEXT, not both")
    if resolve is not None:
        view = conflict_ops.resolve_conflict(p, asset, resolve)
        if json_:
            print_json(view.model_dump(mode="json"))
        else:
            console().print(f"resolved {_brief(view)} with your description (undo with stage5 undo)")
        return
    if apply:
        s, view = conflict_ops.apply_suggestion(p, asset, model=model, api_base=api_base,
                                                api_key_env=api_key_env)
        if json_:
            print_json({"suggestion": s.model_dump(mode="json"), "asset": view.model_dump(mode="json")})
        else:
            _render_suggestion(s)
            console().print(f"applied to {_brief(view)} (undo with stage5 undo)")
        return
    s = conflict_ops.suggest(p, asset, model=model, api_base=api_base, api_key_env=api_key_env)
    if json_:
        print_json(s.model_dump(mode="json"))
        return
    _render_suggestion(s)
    if s.usable:
        console().print(f"apply it with stage5 conflicts {_e(_quote(s.name))} --apply, or "
                        f"write your own with --resolve TEXT")


def _quote(name: str) -> str:
    import shlex

    return shlex.quote(name)


# ---- history / undo ------------------------------------------------------------------------


@app.command(rich_help_panel="History")
def history(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1_000_000, help="How many events, newest first.")] = 20,
    all_branches: Annotated[bool, typer.Option("--all-branches", help="Events of every branch.")] = False,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The change history of the active branch (--json includes each before/after payload)."""
    from stage5cli.history import list_events

    events = list_events(open_project_opt(project), limit=limit, payload=json_, all_branches=all_branches)
    if json_:
        print_json([e.model_dump(mode="json") for e in events])
        return
    if not events:
        console().print("no history yet")
        return
    from rich.table import Table

    t = Table(title="History (newest first)")
    for col in ("id", "at", "branch", "command", "summary", "state"):
        t.add_column(col, overflow="fold")
    for e in events:
        state = "undone" if e.undone else ("can undo" if e.undoable else "permanent")
        t.add_row(str(e.id), e.at[:19].replace("T", " "), _e(e.branch or "-"), _e(e.command),
                  _e(e.summary), state)
    console().print(t)


@app.command(rich_help_panel="History")
def undo(yes: YesOpt = False, project: ProjectOpt = None) -> None:
    """Revert the last change on this branch exactly (repeat to walk back)."""
    from stage5cli import history
    from stage5cli.errors import BlockedError

    p = open_project_opt(project)
    ev = history.peek(p)
    if not ev.undoable:
        raise BlockedError(f"cannot undo {ev.command} (event {ev.id}): {ev.why_not}")
    if not yes:
        typer.confirm(f"undo {ev.command} (event {ev.id}: {ev.summary})?", abort=True)
    done, notes = history.undo(p)
    con = console()
    if done.stepped_over:
        con.print(f"stepped over {_e(', '.join(done.stepped_over))}: permanent, never undone")
    con.print(f"undid {_e(done.command)} (event {done.id}): {_e(done.summary)}")
    for n in notes:
        con.print(f"  {_e(n)}")
