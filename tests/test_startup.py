"""Fast start: the CLI module and `status` never import the heavy libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ["litellm", "torch", "diffusers", "transformers", "PIL", "pypdf", "ray"]

PROBE = """
import sys, json
sys.argv = {argv!r}
from stage5cli.cli import app
try:
    app(prog_name="stage5")
except SystemExit:
    pass
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def _loaded(argv: list[str], cwd) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=["stage5", *argv], heavy=HEAVY)],
                         capture_output=True, text=True, cwd=cwd, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_cli_module_is_light(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, stage5cli.cli; print([m for m in {HEAVY!r} if m in sys.modules])"],
        capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.strip() == "[]"


def test_help_and_status_do_not_import_heavy_modules(styled):
    assert _loaded(["--help"], styled) == []
    assert _loaded(["status"], styled) == []
    assert _loaded(["style", "list"], styled) == []


def test_ruff_bans_module_level_heavy_imports():
    """The same rule as a lint, so a new module cannot slip one in."""
    import tomllib
    from pathlib import Path

    conf = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    banned = conf["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"]
    assert set(HEAVY) <= set(banned)
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "TID253", "stage5cli"],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stdout


def test_python_api_is_exported_lazily(tmp_path):
    import stage5cli

    for name in stage5cli.__all__:
        if name != "__version__":
            assert getattr(stage5cli, name) is not None, name
    out = subprocess.run(
        [sys.executable, "-c", "import sys, stage5cli; print(sorted(m for m in sys.modules "
         "if m.startswith('stage5cli.')))"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"  # importing the package loads nothing else


def test_api_names_do_not_shadow_submodules():
    """`stage5cli.extract` is a subpackage: an API name equal to a submodule would be replaced
    by that module as soon as anything imports it."""
    import pkgutil

    import stage5cli

    submodules = {m.name for m in pkgutil.iter_modules(stage5cli.__path__)}
    assert not submodules & set(stage5cli.__all__)


def test_python_api_end_to_end(tmp_path):
    import stage5cli as s5

    project, created = s5.init_project(tmp_path / "film")
    assert created
    s5.lock_style(project, "anime")
    script = tmp_path / "s.fountain"
    script.write_text("INT. ROOM - DAY\n\nMARA, 60s, sits.\n\nMARA\nHello.\n")
    outcome = s5.run_extraction(project, script, s5.ExtractOptions())
    assert outcome.counts["character"] == 1
    assert [a.name for a in s5.list_assets(project) if a.type == "character"] == ["MARA"]


# ---- the everyday commands: status, review, show (issue 17 item 12) ----------------------------

# Neither pydantic (its import and first model build, ~115 ms), sqlite-utils (~50 ms) nor Rich's
# console (~30 ms) is needed to read a project and print it piped.
READ_PATH_HEAVY = [*HEAVY, "pydantic", "sqlite_utils", "rich.console", "rich.table", "rich.text"]

EVERYDAY_PROBE = """
import contextlib, io, json, sys
from stage5cli.cli import app
seen = {{}}
for argv in {runs!r}:
    sys.argv = ["stage5", *argv]
    out = io.StringIO()  # piped: not a terminal
    try:
        with contextlib.redirect_stdout(out):
            app(prog_name="stage5")
    except SystemExit as e:
        assert not e.code, (argv, e.code)
    assert out.getvalue(), argv
    seen[" ".join(argv)] = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps(seen))
"""


def test_everyday_commands_import_no_pydantic_sqlite_utils_or_rich(styled):
    """status, review and show (and their --json) read the project with sqlite3 and print TSV
    without pydantic, sqlite-utils or Rich; one subprocess runs them all in turn."""
    import stage5cli as s5

    script = styled / "s.fountain"
    script.write_text("INT. ROOM - DAY\n\nMARA, 60s, sits with a LAMP.\n\nMARA\nHello.\n")
    s5.run_extraction(s5.open_project(styled), script, s5.ExtractOptions())
    runs = [["status"], ["review"], ["show", "mara"], ["status", "--json"], ["review", "--json"],
            ["show", "MARA", "--json"]]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    out = subprocess.run(
        [sys.executable, "-c", EVERYDAY_PROBE.format(runs=runs, heavy=READ_PATH_HEAVY)],
        capture_output=True, text=True, cwd=styled, check=True, env=env).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen == {" ".join(r): [] for r in runs}


MARKUP_SAMPLES = [
    "plain", "", "[bold]project[/] x   [bold]branch[/] main", "[bold red]conflicts[/] two",
    "[red]yes[/]", "a [dim](stale)[/]", "[1] not a tag", "a[b", "x [bold]open", "[b]x[/b] y",
    "[bold]a [red]b[/red] c[/]", "2026-12-02T02:16:11.123+00:00", ":thumbs_up: ok :nope:",
    "[bold]:smile:[/] x", "INÉS ÆØÅ ß ★ 🔒 ✓", "line one\nline two", "trailing  ", "  leading",
    "\\[red]escaped", "stage5\\[pdf]", "tab\there", "bell\x07x", "[/]", "[/bold]", "[#ff0000]x[/]",
]


def _piped(con_factory, objects) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        con = con_factory()
        for obj in objects:
            try:
                con.print(obj)
            except Exception as e:  # noqa: BLE001  (Rich's markup errors must stay the same)
                buf.write(f"<{type(e).__name__}>")
    return buf.getvalue()


def test_plain_console_prints_what_rich_prints_piped():
    """console(lean=True) piped is a PlainConsole: the same bytes as the Rich console for every
    string (tags, escapes, emoji codes, timestamps, tabs, bad markup) and table."""
    from stage5cli.cli.app import PlainConsole, PlainTable, console

    def tables(make):
        out = []
        for title, section in (("Assets", False), ("Blocks [b]stage[/] 5", True), (None, False)):
            t = make(title)
            t.section = section
            for col in ("id", "name", "image"):
                t.add_column(col, overflow="fold")
            for sample in MARKUP_SAMPLES:
                if sample not in ("[/]", "[/bold]"):  # (Rich refuses these, so would the TSV)
                    t.add_row("1", sample, "[yellow]placeholder[/]")
            out.append(t)
        return out

    from rich.table import Table

    assert isinstance(console(lean=True), PlainConsole)
    rich_out = _piped(console, [*MARKUP_SAMPLES, *tables(lambda t: Table(title=t))])
    plain_out = _piped(lambda: console(lean=True), [*MARKUP_SAMPLES, *tables(PlainTable)])
    assert plain_out == rich_out
    assert "<MarkupError>" in rich_out  # the samples do reach Rich's own errors


def test_escape_is_richs():
    from rich.markup import escape as rich_escape

    from stage5cli.safe_text import escape

    for s in [*MARKUP_SAMPLES, "x\\", "x\\\\", "\\\\[bold]", "[@click]", "a\\[b]\\"]:
        assert escape(s) == rich_escape(s), s
