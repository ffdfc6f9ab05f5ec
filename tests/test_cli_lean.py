"""The lean dispatch (cli/app.py Stage5App): building only the invoked command gives the same
command, options and help as the whole tree, and anything else gets the whole tree."""

from __future__ import annotations

import pytest
import typer
from typer.main import get_command

from stage5cli.cli import app
from stage5cli.cli.app import invoked_name


def _plain(v, depth=0):
    """A value as comparable data (objects such as Click types: their class and attributes)."""
    if isinstance(v, str | int | float | bool | type(None)):
        return v
    if isinstance(v, list | tuple):
        return [_plain(x, depth + 1) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x, depth + 1) for k, x in v.items()}
    if callable(v) and not hasattr(v, "__dict__") or depth > 3:
        return repr(v)
    return (type(v).__qualname__, _plain(vars(v), depth + 1) if hasattr(v, "__dict__") else repr(v))


def _info(cmd) -> dict:
    """What a command registers: its options and arguments, help and settings."""
    params = [{k: _plain(v) for k, v in vars(p).items()
               if k not in ("callback", "shell_complete", "_custom_shell_complete")}
              for p in cmd.params]
    out = {k: v for k, v in vars(cmd).items()
           if k not in ("params", "commands", "callback", "context_settings")}
    return {**out, "params": params, "callback": getattr(cmd.callback, "__wrapped__", cmd.callback),
            "context_settings": dict(cmd.context_settings),
            "commands": {n: _info(c) for n, c in getattr(cmd, "commands", {}).items()}}


FULL = get_command(app)
NAMES = sorted(FULL.commands)


def test_the_tree_has_every_command():
    assert len(NAMES) > 25 and {"status", "review", "show", "style", "branch", "library"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_lean_tree_registers_the_same_command_and_options(name):
    lean_app = app.lean(name)
    assert lean_app is not None
    lean = get_command(lean_app)
    assert sorted(lean.commands) == [name]
    assert _info(lean.commands[name]) == _info(FULL.commands[name])
    # the root group itself (its -p/--version options, help, settings) is the same
    full_root, lean_root = _info(FULL), _info(lean)
    full_root.pop("commands"), lean_root.pop("commands")
    full_root.pop("callback"), lean_root.pop("callback")
    assert lean_root == full_root


def test_every_registered_command_has_a_lean_app():
    """No command is reachable only through the whole tree (a name Typer derives differently)."""
    assert all(app.lean(n) is not None for n in NAMES)
    assert app.lean("no-such-command") is None


@pytest.mark.parametrize(("argv", "name"), [
    (["status"], "status"), (["-p", "d", "status"], "status"), (["--project", "d", "review"], "review"),
    (["--project=d", "show", "X"], "show"), (["-pd", "style", "list"], "style"),
    (["--help"], None), (["-h"], None), (["--version"], None), ([], None), (["--", "x"], None),
    (["--bogus", "status"], None),
])
def test_invoked_name(argv, name):
    assert invoked_name(argv) == name


def test_lean_dispatch_runs_the_command_and_usage_errors_match(tmp_path, capsys):
    def run(argv):
        with pytest.raises(SystemExit) as e:
            app(args=argv, prog_name="stage5")
        return e.value.code, capsys.readouterr()

    code, out = run(["-p", str(tmp_path), "status", "--bogus"])
    assert code == 2 and out.err == "error: No such option: --bogus (see stage5 status --help)\n"
    code, out = run(["stat"])  # unknown: the whole tree, with Click's suggestion
    assert code == 2 and "Did you mean 'status'?" in out.err
    code, out = run(["style", "list"])
    assert code == 0 and "film-noir" in out.out
    assert isinstance(app, typer.Typer)
