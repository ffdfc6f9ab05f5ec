"""stage5cli.cli.app: errors handled once for every command (no per-command decorator), help panels
in workflow order, the entry points."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stage5cli.errors import BlockedError

from .conftest import REPO, one_line_error

CLI = REPO / "stage5cli" / "cli"


def _boom(*_a, **_k):
    raise RuntimeError("the disk caught fire")


def test_unexpected_error_in_a_subapp_command_is_one_line(styled, cli, monkeypatch):
    import stage5cli.project

    monkeypatch.setattr(stage5cli.project, "list_branches", _boom)
    r = cli("branch", "list", "-p", styled)
    assert r.exit_code == 1
    assert "the disk caught fire" in one_line_error(r)


def test_stage5_error_keeps_its_exit_code(styled, cli, monkeypatch):
    import stage5cli.locking

    def blocked(*_a, **_k):
        raise BlockedError("asset LANTERN is locked")

    monkeypatch.setattr(stage5cli.locking, "set_locked", blocked)
    r = cli("lock", "LANTERN", "-p", styled)
    assert r.exit_code == BlockedError.exit_code != 1
    assert one_line_error(r) == "error: asset LANTERN is locked"


def test_debug_raises_unexpected_errors(styled, cli, monkeypatch):
    import stage5cli.project

    monkeypatch.setattr(stage5cli.project, "list_branches", _boom)
    monkeypatch.setenv("STAGE5_DEBUG", "1")
    with pytest.raises(RuntimeError, match="caught fire"):
        cli("branch", "list", "-p", styled)


def test_keyboard_interrupt_is_exit_130(styled, cli, monkeypatch):
    import stage5cli.project

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(stage5cli.project, "list_branches", interrupt)
    r = cli("branch", "list", "-p", styled)
    assert r.exit_code == 130
    assert one_line_error(r) == "error: interrupted"


def test_no_command_carries_its_own_error_decorator():
    for path in sorted(CLI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                names = {ast.unparse(d) for d in node.decorator_list}
                assert "handled" not in names, f"{path.name}: {node.name}"


def test_help_panels_follow_the_workflow(cli):
    r = cli("--help")
    assert r.exit_code == 0
    panels = re.findall(r"╭─ (.+?) ─", r.stdout)
    assert panels == ["Options", "Project", "Script and assets", "History", "Images",
                      "Lock and export", "Library", "Automation", "Review"]


def test_console_script_and_module_entry_point():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert conf["project"]["scripts"]["stage5"] == "stage5cli.cli:app"
    packages = conf["tool"]["setuptools"]["packages"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts)
               for p in (REPO / "stage5cli").rglob("__init__.py")}
    assert on_disk <= set(packages), on_disk - set(packages)  # a package left out of the wheel
    import typer

    import stage5cli.cli

    assert isinstance(stage5cli.cli.app, typer.Typer)


@pytest.mark.slow
def test_python_dash_m_runs_the_app(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stage5cli", "style", "list", "--json"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.lstrip().startswith("[")


def test_cli_package_layout_is_documented():
    """Every command module is imported by stage5cli/cli/__init__.py (or its commands are lost)."""
    init = ast.parse((CLI / "__init__.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(init) if isinstance(n, ast.ImportFrom)
                and n.module == "stage5cli.cli.commands" for a in n.names}
    on_disk = {p.stem for p in (CLI / "commands").glob("*.py") if p.stem != "__init__"}
    assert imported == on_disk
    assert Path(CLI / "app.py").is_file()
