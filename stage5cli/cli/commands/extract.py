"""Commands that read scripts and list assets: parse, extract, review."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stage5cli.cli.app import (
    ApiKeyEnvOpt,
    JsonOpt,
    MaxAssetsOpt,
    ProjectOpt,
    app,
    console,
    err_console,
    esc,
    new_table,
    open_project_opt,
    print_json,
)

MaxSizeOpt = Annotated[int, typer.Option("--max-size", min=1, max=1 << 30, help="Refuse scripts larger than this many bytes.")]


@app.command(rich_help_panel="Script and assets")
def parse(
    script: Annotated[Path, typer.Argument(help="A .fountain, .fdx, .pdf or .txt screenplay.")],
    json_: JsonOpt = False,
    max_size: MaxSizeOpt = 10_000_000,
) -> None:
    """Parse a screenplay and summarise it (no project needed)."""
    from stage5cli.screenplay import load
    from stage5cli.screenplay.summary import summarize

    sp = load(script, max_bytes=max_size)
    if json_:
        print_json(sp.model_dump(mode="json"))
        return
    info = summarize(sp)
    con = console()
    con.print(f"[bold]{esc(info.get('title') or script.name)}[/]  format {info['format']}  "
              f"scenes {info['scenes']}  ~{info['pages_estimate']} pages  "
              f"encoding {sp.source.encoding}")
    from rich.table import Table

    t = Table(title="Speaking characters")
    t.add_column("character")
    t.add_column("lines", justify="right")
    for c in info["characters"][:40]:
        t.add_row(esc(c["name"]), str(c["lines"]))
    con.print(t)
    for w in info.get("warnings", []):
        err_console().print(f"[yellow]warning:[/] {esc(w)}")


@app.command(rich_help_panel="Script and assets")
def extract(
    script: Annotated[Path, typer.Argument(help="The screenplay to extract assets from.")],
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="litellm model (e.g. openai/gpt-4o-mini); default $STAGE5_MODEL, "
        "else the offline built-in extractor.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")] = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=256, help="LLM requests in flight at once (default: all of a pass's requests, at most 32).", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, max=3600, help="Seconds per LLM request.")] = 60.0,
    chunk_tokens: Annotated[int, typer.Option("--chunk-tokens", min=200, max=1_000_000, help="Pass-1 chunk size in tokens (whole scenes).")] = 6000,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ignore cached LLM answers.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print requests, tokens and cost; call nothing.")] = False,
    restore_removed: Annotated[bool, typer.Option("--restore-removed", help="Bring back the assets you removed (re-extraction skips them otherwise).")] = False,
    max_size: MaxSizeOpt = 10_000_000,
    max_assets: MaxAssetsOpt = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Two-pass extraction of characters, props and locations (needs a locked style)."""
    from stage5cli.extract.registry import resolve_model

    model = resolve_model(model)
    if model is not None and not dry_run:
        # litellm takes seconds to import: let it load while the script is read and chunked
        from stage5cli.extract.llm_calls import start_import

        start_import(model, api_base)
    from stage5cli.extract.base import LLMOptions
    from stage5cli.extract.service import plan

    p = open_project_opt(project)
    opts = LLMOptions(model=model, api_base=api_base, api_key_env=api_key_env,
                      concurrency=concurrency,
                      timeout=timeout, chunk_tokens=chunk_tokens, use_cache=not no_cache,
                      max_bytes=max_size, max_assets=max_assets)
    if dry_run:
        info = plan(p, script, opts)
        if json_:
            print_json(info)
        else:
            cost = info.get("cost_usd_estimate")
            console().print(
                f"dry run: {info['extractor']} extractor, {info['scenes']} scenes, "
                f"{info.get('requests', info.get('requests_pass1', 0) + info.get('requests_pass2_estimate', 0))} "
                f"requests, ~{info.get('input_tokens_estimate', 0)} input tokens, "
                f"estimated cost {'unknown' if cost is None else f'${cost:.4f}'}")
        return
    if restore_removed:
        from stage5cli.curation import restore_removed as forget_removals

        forget_removals(p)
    outcome = _run_with_progress(p, script, opts, quiet=json_)
    data = {
        "extractor": outcome.extractor, "model": outcome.model, "counts": outcome.counts,
        "changes": {k: sorted(v) for k, v in outcome.report.items()},
        "failures": outcome.failures, "ungrounded": len(outcome.result.ungrounded),
        **outcome.stats,
    }
    if json_:
        print_json(data)
    else:
        con = console()
        c = outcome.counts
        con.print(f"extracted {c['character']} characters, {c['location']} locations, "
                  f"{c['prop']} props with the {outcome.extractor} extractor"
                  + (f" ({outcome.model})" if outcome.model else ""))
        changes = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in outcome.report.items()
                            if v and k != "skipped_removed")
        con.print(f"changes: {changes or 'none'}")
        skipped = outcome.report.get("skipped_removed") or []
        if skipped:
            con.print(f"skipped: removed by you: {esc(', '.join(sorted(set(skipped))))} "
                      "(bring them back with stage5 extract SCRIPT --restore-removed)")
        if outcome.stats.get("requests") or outcome.stats.get("cache_hits"):
            cost = outcome.stats.get("cost_usd")
            con.print(f"LLM: {outcome.stats['requests']} requests, {outcome.stats['cache_hits']} "
                      f"cached, {outcome.stats['input_tokens']}+{outcome.stats['output_tokens']} "
                      f"tokens, cost {'unknown' if cost is None else f'${cost:.4f}'}")
        con.print("next: stage5 review, then stage5 generate --all")
        from rich.markup import escape

        for w in outcome.result.warnings():
            err_console().print(f"[yellow]warning:[/] {escape(w)}", highlight=False)

        for w in outcome.stats.get("tag_warnings", []):
            err_console().print(f"[yellow]warning:[/] FDX tags: {esc(w)}")
    if outcome.failures:
        if not json_:
            for f in outcome.failures[:20]:
                console().print(f"[red]failed:[/] {esc(f)}")
        sys.stderr.write(f"error: {len(outcome.failures)} extraction request(s) failed; "
                         "the rest was saved (re-run to retry them)\n")
        raise typer.Exit(1)


def _run_with_progress(p, script, opts, *, quiet: bool):
    from stage5cli.extract.service import run

    if quiet or not sys.stderr.isatty():
        return run(p, script, opts)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console(), transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        return run(p, script, opts, progress=progress)


def _image_cell(state: str | None) -> str:
    """The review table's image column, from readiness.assess."""
    return {"ok": "✓", "placeholder": "[yellow]placeholder[/]", "stale": "[red]stale[/]",
            "off-style": "[red]other style[/]", "failed": "[red]failed[/]"}.get(state or "", "")


@app.command(rich_help_panel="Script and assets")
def review(
    type_: Annotated[str | None, typer.Option("--type", "-t", help="character, prop or location.")] = None,
    conflicts: Annotated[bool, typer.Option("--conflicts", help="Only assets with visual conflicts.")] = False,
    category: Annotated[str | None, typer.Option("--category", "-c", help="Only this breakdown category (cast, props, wardrobe, sets, ...).")] = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List the assets: name, type, category, aliases, scenes, confidence, priority, conflict, image, locked."""
    from stage5cli.readiness import list_views

    views = list_views(open_project_opt(project), asset_type=type_, conflicts_only=conflicts)
    if category is not None:
        from stage5cli.breakdown.categories import parse_category

        wanted = parse_category(category)
        views = [v for v in views if v.category == wanted]
    if json_:
        print_json([v.model_dump(mode="json") for v in views])
        return
    t = new_table(f"Assets ({len(views)})")
    for col in ("id", "name", "type", "category", "aliases", "scenes", "conf.", "prio", "conflict", "image", "locked"):
        t.add_column(col, overflow="fold")
    for v in views:
        scenes = ",".join(map(str, v.scenes[:8])) + ("…" if len(v.scenes) > 8 else "")
        t.add_row(str(v.id), esc(v.name) + (" [dim](stale)[/]" if v.stale else ""), v.type, v.category,
                  esc(", ".join(v.aliases[:3]) + ("…" if len(v.aliases) > 3 else "")), scenes,
                  "" if v.confidence_score is None else f"{v.confidence_score:.2f}",
                  "★" if v.is_priority else "", "[red]yes[/]" if v.has_conflicts else "",
                  _image_cell(v.image_state), "🔒" if v.locked else "")
    console(lean=True).print(t)
