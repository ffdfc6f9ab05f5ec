"""Fast start: the CLI module and `status` never import the heavy libraries."""

from __future__ import annotations

import json
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
