"""`stage5 batch`: many scripts in parallel, one project each, a report for CI."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stage5cli.cli.app import ApiKeyEnvOpt, JsonOpt, MaxAssetsOpt, app, print_json

if TYPE_CHECKING:
    from stage5cli.batch import BatchResult
    from stage5cli.batch.runner import BatchEvent

STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "cyan", "queued": "dim",
                "running": "yellow"}


def live_wanted() -> bool:
    """A live table on a terminal; plain lines in CI (CI=true) or when stderr is not a TTY."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        return False
    return sys.stderr.isatty()


def _line(res: BatchResult) -> str:
    if res.status == "ok":
        c = res.counts
        extra = (f"{res.assets} assets ({c['character']} characters, {c['location']} "
                 f"locations, {c['prop']} props), {res.images} images, "
                 f"{res.conflicts} conflicts, {res.wall_s:.1f} s")
        return f"{res.script} -> {res.project}  {extra}"
    if res.status == "skipped":
        return f"{res.script} -> {res.project}  ({res.reason or 'skipped'})"
    return f"{res.script} -> {res.project}  error: {res.error}"


class PlainDisplay:
    """One line per finished script on stderr (what CI logs show)."""

    def __init__(self) -> None:
        self.total = 0
        self.seen = 0

    def __call__(self, ev: BatchEvent) -> None:
        if ev.kind == "plan":
            self.total = len(ev.tasks)
            up = self.total - ev.to_run
            sys.stderr.write(f"batch: {self.total} script(s), {up} up to date, {ev.to_run} to "
                             f"run on {ev.jobs} worker(s)\n")
        elif ev.kind == "result":
            self.seen += 1
            res = ev.result
            sys.stderr.write(f"[{self.seen}/{self.total}] {res.status:<7} {_line(res)}\n")
        sys.stderr.flush()

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class LiveDisplay:
    """A Rich live table on stderr: running scripts with their stage, then the finished ones."""

    MAX_ROWS = 18

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.rows: dict[int, dict[str, Any]] = {}
        self.t0 = time.perf_counter()
        self.order: list[int] = []  # finished, newest last
        self.live = None

    def __enter__(self) -> LiveDisplay:
        from rich.live import Live

        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def __call__(self, ev: BatchEvent) -> None:
        if ev.kind == "plan":
            for t in ev.tasks:
                self.rows[t.index] = {"script": t.display, "status": "queued", "stage": "",
                                      "res": None, "since": None}
        elif ev.kind == "stage":
            row = self.rows.get(ev.index)
            if row is not None and row["res"] is None:
                if row["status"] != "running":
                    row["since"] = time.perf_counter()
                row.update(status="running", stage=ev.stage)
        elif ev.kind == "result":
            row = self.rows.get(ev.index)
            if row is not None:
                # the stage column says where it ended: done, or the stage that failed
                row.update(status=ev.result.status, res=ev.result,
                           stage="done" if ev.result.status != "failed" else (row["stage"] or "-"))
                self.order.append(ev.index)
        if self.live is not None:
            self.live.update(self._table())

    def _table(self):
        from rich.markup import escape
        from rich.table import Table

        counts: dict[str, int] = {}
        for r in self.rows.values():
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        done = sum(counts.get(s, 0) for s in ("ok", "failed", "skipped"))
        caption = (f"{done}/{len(self.rows)} done: {counts.get('ok', 0)} ok, "
                   f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped, "
                   f"{counts.get('running', 0)} running; {time.perf_counter() - self.t0:.0f} s")
        t = Table(title="stage5 batch", caption=caption, expand=False)
        longest = max((len(r["script"]) for r in self.rows.values()), default=6)
        # file names are never broken mid-word: one line each, shortened with … past 60
        for col, kw in (("script", {"no_wrap": True, "overflow": "ellipsis",
                                    "min_width": min(60, longest), "max_width": 60}),
                        ("status", {}),
                        ("stage", {}), ("assets", {"justify": "right"}),
                        ("images", {"justify": "right"}), ("time", {"justify": "right"}),
                        ("error", {"overflow": "fold", "max_width": 60})):
            t.add_column(col, **kw)
        running = [i for i, r in self.rows.items() if r["status"] == "running"]
        failed = [i for i in self.order if self.rows[i]["status"] == "failed"]
        recent = [i for i in self.order if i not in failed]
        show = running + failed[-self.MAX_ROWS:]
        show += recent[-max(0, self.MAX_ROWS - len(show)):] if len(show) < self.MAX_ROWS else []
        if len(show) < self.MAX_ROWS:  # fill with what is queued next
            show += [i for i, r in self.rows.items() if r["status"] == "queued"][
                : self.MAX_ROWS - len(show)]
        for i in show:
            r = self.rows[i]
            res = r["res"]
            if res is not None:
                took = f"{res.wall_s:.1f} s"
            elif r["since"] is not None:
                took = f"{time.perf_counter() - r['since']:.0f} s"
            else:
                took = ""
            colour = STATUS_STYLE.get(r["status"], "")
            t.add_row(escape(r["script"]), f"[{colour}]{r['status']}[/]", r["stage"],
                      str(res.assets) if res else "", str(res.images) if res else "", took,
                      escape(res.error or "") if res and r["status"] == "failed" else "")
        return t


def _exports(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        out += [p.strip().lower() for p in v.split(",") if p.strip()]
    return tuple(out)


@app.command(rich_help_panel="Automation")
def batch(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT", help="Script files, folders (searched for .fountain, .fdx, .pdf, .txt) or glob patterns.", show_default=False)],
    style: Annotated[str, typer.Option("--style", "-s", help="Style id (stage5 style list) or a style capsule YAML file.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the projects: one OUT/<script-stem>/ per script.", show_default=False)],
    model: Annotated[str | None, typer.Option("--model", "-m", help="LLM for extraction (default $STAGE5_MODEL, else the built-in extractor).")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="Base URL of the LLM API.")] = None,
    api_key_env: ApiKeyEnvOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", max=3600, help="Seconds per LLM request.")] = 60.0,
    max_assets: MaxAssetsOpt = None,
    generate: Annotated[bool, typer.Option("--generate", help="Generate an image key per asset.")] = False,
    backend: Annotated[str, typer.Option("--backend", "-b", help="Image backend: placeholder, diffusers or api.")] = "placeholder",
    image_model: Annotated[str | None, typer.Option("--image-model", help="diffusers: folder or hub id ($STAGE5_DIFFUSERS_MODEL); api: litellm image model.")] = None,
    image_api_base: Annotated[str | None, typer.Option("--image-api-base", help="Base URL of the image API.")] = None,
    lock: Annotated[bool, typer.Option("--lock", help="Run lock-all (the gatekeeper) on each project; needs --generate.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="With --lock: unresolved conflicts fail the script (lock-all --strict).")] = False,
    allow_placeholder: Annotated[bool, typer.Option("--allow-placeholder", help="With --lock: accept placeholder image keys (lock-all --allow-placeholder).")] = False,
    export: Annotated[list[str] | None, typer.Option("--export", help="json, yaml or html (repeat, or comma-separated); written into each project folder.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", max=256, help="Scripts at once, in worker processes (default: CPU count).", show_default=False)] = None,
    llm_concurrency: Annotated[int, typer.Option("--llm-concurrency", max=256, help="LLM requests in flight across all workers.")] = 8,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report here.")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here (one testcase per script).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo scripts that already finished (rebuilds their projects).")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Start no new script after the first failure.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local: worker processes on this machine; ray: one Ray task per script (needs the ray extra).")] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="--engine ray: the cluster (auto, HOST:PORT or ray://HOST:PORT; default: start a local Ray instance with --jobs CPUs).", show_default=False)] = None,
    image_concurrency: Annotated[int | None, typer.Option("--image-concurrency", help="--engine ray: image requests in flight across the cluster (default: no cap).", show_default=False)] = None,
    json_: JsonOpt = False,
) -> None:
    """Run init, style lock, extract, generate, lock-all and export over many scripts at once.

    Resumable: a script whose project finished with the same script, style and options is skipped. Exit 0 when every script is ok or skipped, 1 when any failed, 2 for bad usage, 130 when interrupted (the report says what finished; a re-run resumes).
    """
    from stage5cli.batch import (
        BatchOptions,
        check_output_file,
        exit_code,
        run_batch,
        write_junit,
        write_report,
    )
    from stage5cli.errors import UsageError

    for item in inputs:  # before any table is drawn: a missing file or folder is one line
        if not any(c in item for c in "*?[") and not Path(item).expanduser().exists():
            raise UsageError(f"no such file or folder: {item}")
    check_output_file(report, "--report")
    if api_key_env is not None:  # a variable that is not set: exit 2 before any worker starts
        from stage5cli.secrets import api_key_for

        api_key_for(api_base, api_key_env)
    check_output_file(junit, "--junit")
    opts = BatchOptions(style=style, out=out, model=model, api_base=api_base, api_key_env=api_key_env,
                        generate=generate,
                        backend=backend.strip().lower(), image_model=image_model,
                        image_api_base=image_api_base, lock=lock, strict=strict,
                        allow_placeholder=allow_placeholder, exports=_exports(export),
                        jobs=jobs, llm_concurrency=llm_concurrency, timeout=timeout,
                        max_assets=max_assets,
                        force=force, fail_fast=fail_fast, engine=engine.strip().lower(),
                        ray_address=ray_address or None, image_concurrency=image_concurrency)
    display = LiveDisplay() if live_wanted() else PlainDisplay()
    with display:
        result = run_batch(inputs, opts, on_event=display)
    written = []
    if report is not None:
        written.append(str(write_report(result, report)))
    if junit is not None:
        written.append(str(write_junit(result, junit)))
    t = result.totals
    if json_:
        print_json(result.to_dict())
    else:
        where = f"; wrote {', '.join(written)}" if written else ""
        cost = "unknown" if t.cost_usd is None else f"${t.cost_usd:.4f}"
        sys.stdout.write(f"{t.scripts} script(s): {t.ok} ok, {t.failed} failed, "
                         f"{t.skipped} skipped in {t.wall_s:.1f} s; {t.assets} assets, "
                         f"{t.images} images, {t.tokens} tokens, cost {cost}{where}\n")
    code = exit_code(result)
    if code == 130:
        sys.stderr.write("error: interrupted; the report lists what finished; run the same "
                         "command again to resume\n")
    elif code:
        failed = [r for r in result.scripts if r.status == "failed"]
        sys.stderr.write(f"error: {len(failed)} script(s) failed; first: {failed[0].script}: "
                         f"{failed[0].error}\n")
    raise typer.Exit(code)
