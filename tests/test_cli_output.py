"""The CLI as people expect it (issue 17.1, 17.2, 17.9 and the escaping half of 14.6): piped
output is plain TSV / YAML / JSON that parses back, `-p` works before the command name,
`--version`, and names that look like Rich markup or carry control characters print as text."""

from __future__ import annotations

import csv
import io
import json

import yaml

from .helpers import TRIO, add_assets

WEIRD = [
    ("[red]X", "character", "A man whose name looks like markup."),
    ("[/]x", "prop", "A prop that closes a tag."),
    ("CAFÉ \x1b[2J NOIR", "location", "A place with a terminal escape in its name."),
]


def tsv(text: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert all("│" not in ln and "┃" not in ln and "━" not in ln for ln in lines), text
    return list(csv.DictReader(io.StringIO("\n".join(lines)), delimiter="\t"))


def test_listing_commands_piped_parse_back(styled, cli):
    add_assets(styled, TRIO + [("WEDDING CAKE WITH A VERY LONG NAME THAT WOULD WRAP", "prop",
                                "A tall cake. " * 20)])
    cli("generate", "--all", "-p", styled)
    for args, key, field in (
        (("review",), "name", "name"),
        (("history",), "command", "command"),
        (("jobs",), "asset", "asset_name"),
        (("branch", "list"), "name", "name"),
        (("style", "list"), "id", "id"),
    ):
        piped = cli(*args, "-p", styled)
        assert piped.exit_code == 0, piped.output
        rows = tsv(piped.stdout)
        data = json.loads(cli(*args, "-p", styled, "--json").stdout)
        assert len(rows) == len(data), (args, piped.stdout)
        got = [r[key].replace(" (locked)", "") for r in rows]
        assert got == [str(d[field]) for d in data], (args, got)
    review = tsv(cli("review", "-p", styled).stdout)
    assert "WEDDING CAKE WITH A VERY LONG NAME THAT WOULD WRAP" in [r["name"] for r in review]
    ids = [r["id"] for r in tsv(cli("style", "list").stdout)]
    assert "watercolour-storybook" in ids and not any(i.endswith("…") for i in ids)


def test_style_show_is_valid_yaml_and_imports_back(project, cli, tmp_path):
    r = cli("style", "show", "watercolour-storybook")
    assert r.exit_code == 0
    data = yaml.safe_load(r.stdout)
    as_json = json.loads(cli("style", "show", "watercolour-storybook", "--json").stdout)
    assert data == as_json
    data["id"] = "my-watercolour"
    data.pop("sha256")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(data))
    r = cli("style", "import", mine, "-p", project)
    assert r.exit_code == 0, r.output


def test_project_option_before_the_command(styled, cli):
    add_assets(styled, TRIO)
    r = cli("-p", styled, "review")
    assert r.exit_code == 0, r.output
    assert {row["name"] for row in tsv(r.stdout)} == {n for n, _, _ in TRIO}
    r = cli("-p", styled, "generate", "--all")
    assert r.exit_code == 0, r.output
    r = cli("--project", styled, "show", "MARA", "--json")
    assert json.loads(r.stdout)["name"] == "MARA"
    # the command's own -p wins over the global one
    r = cli("-p", styled / "nowhere", "status", "-p", styled)
    assert r.exit_code == 0, r.output


def test_version(cli):
    from stage5cli import __version__

    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"stage5 {__version__}"
    r = cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert __version__ in checks["version"]["detail"]


def test_markup_and_control_characters_print_as_text(styled, cli):
    add_assets(styled, WEIRD)
    for args in (("review",), ("show", "[red]X"), ("show", "[/]x"), ("status",),
                 ("generate", "--all"), ("jobs",), ("history",)):
        r = cli(*args, "-p", styled)
        assert r.exit_code == 0, (args, r.output)
        assert "\x1b" not in r.stdout, (args, r.stdout)
    out = cli("review", "-p", styled).stdout
    assert "[red]X" in out and "[/]x" in out and "CAFÉ \\x1b[2J NOIR" in out
    assert "[red]X" in cli("show", "[red]X", "-p", styled).stdout


def test_esc_keeps_brackets_in_rich_output():
    from rich.console import Console

    from stage5cli.cli.app import esc

    con = Console(file=io.StringIO(), width=200, color_system=None)
    con.print(f"[bold]extra[/] {esc(chr(27) + '[2J pip install stage5[pdf]')}")
    assert con.file.getvalue().strip() == "extra \\x1b[2J pip install stage5[pdf]"


def test_names_as_people_type_them(styled, cli):
    """17.3: name and alias lookup is case-, accent- and apostrophe-insensitive."""
    add_assets(styled, [("INÉS", "character", "A dancer."), ("JOSÉ", "character", "A sailor."),
                        ("O’BRIEN", "character", "A cook."), ("CAFÉ NOIR", "location", "A bar.")])
    for typed, name in (("ines", "INÉS"), ("jose", "JOSÉ"), ("Inés", "INÉS"), ("o'brien", "O’BRIEN"),
                        ("cafe noir", "CAFÉ NOIR")):
        r = cli("show", typed, "-p", styled, "--json")
        assert r.exit_code == 0, (typed, r.output)
        assert json.loads(r.stdout)["name"] == name
    cli("edit", "JOSÉ", "--add-alias", "Señor Pérez", "-p", styled)
    r = cli("show", "senor perez", "-p", styled, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["name"] == "JOSÉ", r.output
    r = cli("show", "inez", "-p", styled)
    assert r.exit_code != 0 and "did you mean" in r.stderr and "INÉS" in r.stderr


def test_everyday_commands_do_not_import_numpy(styled):
    """17.12: sqlite-utils is imported without numpy/pandas (stage5cli.db), and numpy still
    imports afterwards (torch and diffusers need it)."""
    import subprocess
    import sys

    add_assets(styled, TRIO)
    code = (
        "import sys, runpy\n"
        "root = sys.argv[1]\n"
        "for args in (['status'], ['review'], ['show', 'MARA']):\n"
        "    sys.argv = ['stage5', *args, '-p', root]\n"
        "    try:\n"
        "        runpy.run_module('stage5cli', run_name='__main__')\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "print('LOADED', 'numpy' in sys.modules, 'pandas' in sys.modules, file=sys.stderr)\n"
        "import numpy\n"
        "print('NUMPY', numpy.__name__, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(styled)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "LOADED False False" in r.stderr and "NUMPY numpy" in r.stderr, r.stderr


def test_batch_on_a_missing_folder_fails_before_any_table(cli, tmp_path):
    r = cli("batch", tmp_path / "nowhere", "--style", "film-noir", "--out", tmp_path / "out")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"error: no such file or folder: {tmp_path / 'nowhere'}"
    assert r.stdout == "" and not (tmp_path / "out").exists()


def test_demo_summary_lines_are_not_wrapped(cli, tmp_path):
    r = cli("demo", "--dir", tmp_path / "demo", env={"COLUMNS": "40"})
    assert r.exit_code == 0, r.output
    steps = [ln for ln in r.stdout.splitlines() if ln[:2] in {f"{i}." for i in range(1, 9)}]
    assert len(steps) >= 6 and any(len(ln) > 40 for ln in steps), r.stdout
