"""Style capsules: built-ins, validation, import, the lock and the gate."""

from __future__ import annotations

import json

import pytest
import yaml

from stage5cli.styles import StyleCapsule, builtin_styles, compose_prompt, load_yaml_file
from tests.conftest import one_line_error, table_dump


def test_at_least_eight_distinct_builtins():
    styles = builtin_styles()
    assert len(styles) >= 8
    assert len({s.prompt for s in styles.values()}) == len(styles)
    assert len({tuple(s.palette) for s in styles.values()}) == len(styles)
    for s in styles.values():
        assert "{subject}" in s.prompt and s.negative_prompt and s.description


def test_style_list_json(cli):
    data = json.loads(cli("style", "list", "--json").stdout)
    ids = [d["id"] for d in data]
    assert "film-noir" in ids and len(ids) >= 8
    assert all(d["origin"] == "built-in" and len(d["sha256"]) == 64 for d in data)


def test_style_show(cli):
    r = cli("style", "show", "anime", "--json")
    assert json.loads(r.stdout)["name"] == "Anime"
    r = cli("style", "show", "anime")
    assert "prompt:" in r.stdout


def test_style_show_unknown_suggests(cli):
    r = cli("style", "show", "anme")
    assert r.exit_code == 2
    assert "did you mean: anime" in one_line_error(r)


def _write(tmp_path, body: dict | str, name="mine.yaml"):
    p = tmp_path / name
    p.write_text(body if isinstance(body, str) else yaml.safe_dump(body))
    return p


def _valid(**over):
    body = builtin_styles()["anime"].model_dump(mode="json")
    body.update(id="my-look", name="My look")
    body.update(over)
    return body


def test_import_and_lock_user_style(project, cli, tmp_path):
    r = cli("style", "import", _write(tmp_path, _valid()), "-p", project)
    assert r.exit_code == 0, r.output
    ids = [d["id"] for d in json.loads(cli("style", "list", "--json", "-p", project).stdout)]
    assert "my-look" in ids
    assert cli("style", "lock", "my-look", "-p", project).exit_code == 0


@pytest.mark.parametrize(
    "body, expected",
    [
        ("id: [unclosed", "mine.yaml: line"),
        ({k: v for k, v in _valid().items() if k != "negative_prompt" and k != "name"}, "name: field required"),
        (_valid(colour="red"), "colour: unknown field"),
        (_valid(prompt="a picture of a thing"), "prompt: must contain the {subject} slot"),
        (_valid(palette=["red"]), "palette: colours must be #rrggbb"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        (_valid(id="film-noir"), "is a built-in style"),
    ],
)
def test_import_bad_files_one_line(project, cli, tmp_path, body, expected):
    before = table_dump(project / "stage5.db")
    r = cli("style", "import", _write(tmp_path, body), "-p", project)
    assert r.exit_code == 2
    line = one_line_error(r)
    assert expected in line and "mine.yaml" in line
    assert table_dump(project / "stage5.db") == before


def test_import_missing_file(project, cli, tmp_path):
    r = cli("style", "import", tmp_path / "nope.yaml", "-p", project)
    assert r.exit_code == 2 and "no such file" in one_line_error(r)


def test_lock_unknown_style_suggests(project, cli):
    r = cli("style", "lock", "film-nior", "-p", project)
    assert r.exit_code == 2
    assert "did you mean: film-noir" in one_line_error(r)


def test_lock_same_is_noop_and_other_refused(styled, cli):
    before = table_dump(styled / "stage5.db")
    r = cli("style", "lock", "film-noir", "-p", styled)
    assert r.exit_code == 0 and "already locked" in r.stdout
    assert table_dump(styled / "stage5.db") == before
    r = cli("style", "lock", "anime", "-p", styled)
    assert r.exit_code == 3
    assert "stage5 branch create NAME --style anime" in one_line_error(r)
    assert table_dump(styled / "stage5.db") == before


def test_snapshot_survives_yaml_edit_and_delete(project, cli, tmp_path):
    path = _write(tmp_path, _valid(description="Original look."))
    cli("style", "import", path, "-p", project)
    cli("style", "lock", "my-look", "-p", project)
    sha = json.loads(cli("status", "--json", "-p", project).stdout)["style"]["sha256"]
    path.write_text(yaml.safe_dump(_valid(description="Edited later.")))
    cli("style", "import", path, "-p", project)  # the imported copy changes ...
    path.unlink()
    data = json.loads(cli("status", "--json", "-p", project).stdout)
    assert data["style"]["sha256"] == sha  # ... the lock does not
    shown = json.loads(cli("style", "show", "my-look", "--json", "-p", project).stdout)
    assert shown["description"] == "Original look."


def test_builtin_file_loader_reports_field(tmp_path):
    from stage5cli.errors import UsageError

    p = _write(tmp_path, _valid(defaults={"steps": 0}))
    with pytest.raises(UsageError, match=r"defaults.steps"):
        load_yaml_file(p)


def test_compose_prompt_injects_style():
    s = builtin_styles()["film-noir"]
    p = compose_prompt(s, name="BRICK", asset_type="character", description="A tall man in a grey coat.")
    assert p.startswith("1940s film noir still of BRICK, character, A tall man in a grey coat")
    assert s.asset_types.character in p and s.lighting in p
    assert "colour palette almost black" in p and "#" not in p  # colour words, never hex


def test_capsule_sha_is_stable():
    s = builtin_styles()["anime"]
    assert s.sha256() == StyleCapsule.model_validate(s.model_dump()).sha256()
