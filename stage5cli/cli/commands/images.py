"""Commands that make images: generate, jobs."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stage5cli.cli.app import (
    ApiKeyEnvOpt,
    JsonOpt,
    ProjectOpt,
    app,
    console,
    err_console,
    esc,
    open_project_opt,
    print_json,
)


@app.command(rich_help_panel="Images")
def generate(
    assets: Annotated[list[str] | None, typer.Argument(metavar="[ASSET]...", help="Assets by name, alias or id.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every unlocked asset (regenerates).")] = False,
    missing: Annotated[bool, typer.Option("--missing", help="Assets without a current image (none, failed, stale or another style).")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Assets whose last job failed.")] = False,
    stale: Annotated[bool, typer.Option("--stale", help="Only assets whose image is stale or in another style.")] = False,
    backend: Annotated[str, typer.Option("--backend", "-b", help="placeholder, diffusers or api.")] = "placeholder",
    model: Annotated[str | None, typer.Option("--model", "-m", help="diffusers: local folder or hub id ($STAGE5_DIFFUSERS_MODEL); api: litellm image model.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="Base URL of the image API.")] = None,
    api_key_env: ApiKeyEnvOpt = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, max=200, help="Override the style's steps.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=2**32 - 1, help="Override the style's seed.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, max=3600, help="Seconds per API request.")] = 120.0,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, max=64, help="diffusers: images per pipeline call for same-size assets (default: 1 on CPU, 4 on CUDA).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show count, sizes and estimated cost only.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before a large or paid batch.")] = False,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One image key per asset in the locked style (character 512x768, prop 512x512, location 1024x576)."""
    from stage5cli import jobs
    from stage5cli.images import get_backend

    p = open_project_opt(project)
    p.require_style()
    p.require_draft("generate images")
    if backend == "diffusers" and not model:
        model = os.environ.get("STAGE5_DIFFUSERS_MODEL") or None
    if batch_size is not None and backend != "diffusers":
        from stage5cli.errors import UsageError

        raise UsageError("--batch-size is for --backend diffusers")
    if api_key_env is not None and backend != "api":
        from stage5cli.errors import UsageError

        raise UsageError("--api-key-env is for --backend api")
    be = get_backend(backend, model=model, api_base=api_base, timeout=timeout,
                     api_key_env=api_key_env,
                     **({"batch_size": batch_size} if batch_size else {}))
    if not dry_run:
        be.check()  # a backend that cannot run at all is refused before any job row is made
    jobs.recover_stuck(p)
    sel = jobs.select(p, assets or [], all_=all_, missing=missing, retry_failed=retry_failed,
                      stale=stale)
    plan = jobs.build_requests(p, sel.rows, backend=be, steps=steps, seed=seed)
    est = jobs.estimate(plan)
    for w in sel.warnings:
        err_console().print(f"[yellow]warning:[/] {esc(w)}")
    if sel.skipped_locked:
        err_console().print(f"skipped {len(sel.skipped_locked)} locked asset(s): {esc(', '.join(sel.skipped_locked[:8]))}")
    if dry_run:
        if json_:
            print_json(est)
        else:
            cost = est["estimated_cost_usd"]
            sizes = ", ".join(f"{n} at {s}" for s, n in est["sizes"].items()) or "none"
            console().print(f"dry run: {est['images']} image(s) with {est['backend']} "
                            f"({est['model']}): {sizes}; estimated cost "
                            f"{'unknown' if cost is None else f'${cost:.2f}'}")
            _print_budget(est["prompt_budget"])
        return
    if not plan.requests:
        if json_:
            print_json({"done": [], "failed": [], "cost_usd": 0.0, "backend": backend})
        else:
            console().print("nothing to generate")
        return
    if jobs.needs_confirmation(plan, est) and not yes:
        cost = est["estimated_cost_usd"]
        question = (f"generate {est['images']} image(s) with {est['backend']} "
                    f"(estimated {'unknown cost' if cost is None else f'${cost:.2f}'})?")
        if not sys.stdin.isatty() and not os.environ.get("STAGE5_ASSUME_TTY"):
            from stage5cli.errors import UsageError

            raise UsageError(f"{question} refused without a terminal: pass --yes")
        typer.confirm(question, abort=True)
    outcome = _generate_with_progress(p, plan, quiet=json_)
    if json_:
        print_json(outcome)
    else:
        cost = outcome["cost_usd"]
        console().print(f"generated {len(outcome['done'])} image(s) with {outcome['backend']} "
                        f"({outcome['model']}), {len(outcome['failed'])} failed, cost "
                        f"{'unknown' if cost is None else f'${cost:.2f}'}")
        _print_budget(jobs.prompt_summary(plan))
    if outcome["failed"]:
        if not json_:
            for f in outcome["failed"][:20]:
                console().print(f"[red]failed:[/] {esc(f['asset'])}: {esc(f['error'])}")
        sys.stderr.write(f"error: {len(outcome['failed'])} image(s) failed; "
                         "retry with stage5 generate --retry-failed\n")
        raise typer.Exit(1)


def _print_budget(b: dict | None) -> None:
    """One line: what the prompts were sized for and how many had to leave something out."""
    if not b or b.get("limit") is None:
        return
    how = " (full text: T5 encoder)" if b.get("long_prompt") == "t5" else ""
    console().print(f"prompts sized for {b['encoder']}{how}: at most {b['largest']} of "
                    f"{b['limit']} {b['unit']}; {b['with_dropped']} left description or "
                    "palette words out (stage5 show NAME lists them)", highlight=False)


def _generate_with_progress(p, plan, *, quiet: bool):
    from stage5cli import jobs

    if quiet or not sys.stderr.isatty():
        return jobs.run(p, plan)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console(), transient=True) as bar:
        task = bar.add_task("images", total=len(plan.requests))

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, description=f"images ({name})")

        return jobs.run(p, plan, progress=progress)


@app.command("jobs", rich_help_panel="Images")
def jobs_cmd(
    status: Annotated[str | None, typer.Option("--status", help="pending, running, done or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1_000_000, help="Most recent N jobs.")] = 50,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List image generation jobs (newest first)."""
    from stage5cli import jobs
    from stage5cli.errors import UsageError

    if status and status not in ("pending", "running", "done", "failed"):
        raise UsageError(f"unknown status {status!r}: use pending, running, done or failed")
    rows = jobs.list_jobs(open_project_opt(project), status=status, limit=limit)
    if json_:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"Image jobs ({len(rows)})")
    for col in ("id", "asset", "status", "backend", "size", "seed", "image / error", "finished"):
        t.add_column(col, overflow="fold")
    for r in rows:
        colour = {"done": "green", "failed": "red"}.get(r["status"], "yellow")
        t.add_row(str(r["id"]), esc(r["asset_name"] or "?"), f"[{colour}]{r['status']}[/]", esc(r["backend"]),
                  f"{r['width']}x{r['height']}", str(r["seed"]), esc(r["image_path"] or r["error"] or ""),
                  (r["finished_at"] or "")[:19])
    console().print(t)
