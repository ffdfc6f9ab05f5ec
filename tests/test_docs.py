"""Docs stay honest: every command has help text and appears in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from stage5cli.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(typer_app: typer.Typer, prefix: str = "") -> list[tuple[str, object]]:
    group = typer.main.get_command(typer_app)
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, f"{path} {name}".strip())
        else:
            out.append((path, cmd))

    walk(group, prefix)
    return out


COMMANDS = _commands(app)


def test_there_are_commands():
    names = {n for n, _ in COMMANDS}
    assert {"init", "status", "style lock", "branch create", "extract", "generate", "lock-all"} <= names


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_has_help(name, cmd):
    assert (cmd.help or "").strip(), f"{name} has no help text"


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_command_in_readme(name):
    assert f"stage5 {name}" in README, f"`stage5 {name}` is not documented in README.md"


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_project_option_everywhere(name, cmd):
    if name in {"init", "parse", "demo", "batch"} or name.startswith("library ") and name != "library use":
        return
    opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert {"--project", "-p"} <= opts, f"{name} lacks --project/-p"


def test_readme_opens_with_the_two_commands():
    head = README[:1500]
    assert "make demo" in head and "make test" in head
    assert "make test" in (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
