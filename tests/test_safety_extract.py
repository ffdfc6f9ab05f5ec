"""Issue 14 items 3, 4, 5, 6 and 9 from the CLI: at most so many assets of a kind, a failed run
changes nothing it did not finish, a provider's text is scrubbed before it is stored, names are
data, a model's sizes are capped."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest

from stage5cli.store import MAX_ALIASES, MAX_ASSETS_PER_KIND, MAX_MENTIONS

from .conftest import table_dump
from .fake_llm import FakeLLM

SCRIPT = """INT. HARBOUR OFFICE - NIGHT

MARA lights the LANTERN on the desk.

MARA
Stay with me.

EXT. DOCKS - DAY

ROOK waits by the water with the LANTERN.

ROOK
Too late.

INT. HARBOUR OFFICE - LATER

MARA and ROOK argue.

MARA
Go home.
"""


@pytest.fixture
def script(tmp_path):
    p = tmp_path / "s.fountain"
    p.write_text(SCRIPT)
    return p


def _rows(styled, sql):
    conn = sqlite3.connect(styled / "stage5.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _extract(cli, styled, script, llm, *extra):
    return cli("extract", script, "--model", "openai/fake-model", "--api-base", llm.api_base,
               "--no-cache", "-p", styled, *extra, env={"STAGE5_RETRY_BACKOFF": "0"})


def test_a_reextraction_whose_passes_fail_marks_nothing_stale(styled, cli, script):
    with FakeLLM() as llm:
        assert _extract(cli, styled, script, llm).exit_code == 0
    before = _rows(styled, "SELECT id, name, stale FROM project_assets ORDER BY id")
    assert before and all(s == 0 for *_, s in before)
    with FakeLLM(garbage=True) as llm:
        _extract(cli, styled, script, llm)
    assert _rows(styled, "SELECT id, name, stale FROM project_assets ORDER BY id") == before


@dataclass
class EchoLLM(FakeLLM):
    """Puts the Authorization header it was sent into every name, alias and description."""

    seen_auth: str = ""

    def __call__(self, req):
        self.seen_auth = req.headers.get("Authorization") or req.headers.get("authorization") or ""
        return super().__call__(req)

    def answer(self, messages):
        out = super().answer(messages)
        token = self.seen_auth.split()[-1] if self.seen_auth else ""
        for ent in out.get("entities", []):
            ent["aliases"] = [*ent.get("aliases", []), token, f"{ent['name']} {token}"]
        if "description" in out:
            out["description"] += f" (key {token})"
            out["conflictDetails"] = f"echo {token}"
        return out


def test_a_key_echoed_by_the_provider_is_stored_and_printed_nowhere(styled, cli, script,
                                                                   monkeypatch):
    secret = "plain-echoed-secret-4711"
    monkeypatch.setenv("STAGE5_API_KEY", secret)
    with EchoLLM() as llm:
        r = _extract(cli, styled, script, llm, "--json")
    assert r.exit_code == 0, r.output
    assert secret in llm.seen_auth  # it was sent, and came back in every answer
    assert _rows(styled, "SELECT count(*) FROM project_assets")[0][0] > 0
    assert secret not in json.dumps(table_dump(styled / "stage5.db"), default=str)
    for argv in (["review"], ["list", "--json"], ["show", "MARA", "--json"]):
        out = cli(*argv, "-p", styled)
        assert secret not in out.output, argv


@dataclass
class HugeLLM(FakeLLM):
    """A model that answers 5,000 aliases and 2,000 mentions per entity."""

    def answer(self, messages):
        out = super().answer(messages)
        for ent in out.get("entities", []):
            scene = ent["mentions"][0]["sceneNumber"]
            ent["aliases"] = [f"{ent['name']} the {i}th" for i in range(5000)]
            ent["mentions"] = [{"sceneNumber": scene, "text": f"{ent['name']} {i}",
                                "context": ""} for i in range(2000)]
        return out


def test_a_models_aliases_and_mentions_are_capped(styled, cli, script):
    with HugeLLM() as llm:
        assert _extract(cli, styled, script, llm).exit_code == 0
        pass2 = [r for r in llm.requests if "Asset:" in r.body.decode()]
    assert pass2 and max(len(r.body) for r in pass2) < 40_000  # the pass-2 prompt stays bounded
    for name, meta in _rows(styled, "SELECT name, metadata FROM project_assets"):
        assert len(json.loads(meta)["aliases"]) <= MAX_ALIASES, name
    for (n,) in _rows(styled, "SELECT count(*) FROM asset_mentions GROUP BY asset_id"):
        assert n <= MAX_MENTIONS


def test_a_number_is_an_id_never_a_name(styled, cli):
    assert cli("add", "LOCKER 1", "--type", "prop", "-p", styled).exit_code == 0
    assert cli("add", "DOOR", "--type", "prop", "-p", styled).exit_code == 0
    r = cli("add", "1", "--type", "prop", "-p", styled)
    assert r.exit_code == 2 and "bare number" in r.stderr
    [(door_id,)] = _rows(styled, "SELECT id FROM project_assets WHERE name = 'DOOR'")
    for ref in (str(door_id), f"#{door_id}", f"id:{door_id}"):
        out = cli("show", ref, "--json", "-p", styled)
        assert out.exit_code == 0 and json.loads(out.stdout)["name"] == "DOOR", ref
    assert cli("remove", f"#{door_id}", "--yes", "-p", styled).exit_code == 0
    assert [n for (n,) in _rows(styled, "SELECT name FROM project_assets")] == ["LOCKER 1"]


# five speakers: ROOK in three scenes, MARA in two, the others once each, TESS and VIK last
CROWD = "".join(f"INT. ROOM - DAY\n\n{who} waits.\n\n" + "".join(
    f"{w}\nNow.\n\n" for w in who.split(" and ")) for who in (
        "ROOK and MARA", "ROOK and ODO", "ROOK and MARA", "TESS", "VIK"))


def _names(styled, kind):
    return sorted(n for n, t in _rows(styled, "SELECT name, asset_type FROM project_assets")
                  if t == kind)


def test_at_most_so_many_assets_of_a_kind_are_kept_the_most_seen(styled, cli, tmp_path):
    script = tmp_path / "crowd.fountain"
    script.write_text(CROWD)
    assert cli("extract", script, "-p", styled).exit_code == 0
    assert _names(styled, "character") == ["MARA", "ODO", "ROOK", "TESS", "VIK"]
    r = cli("extract", script, "-p", styled, "--max-assets", "3")
    assert r.exit_code == 0, r.output
    assert "left out the 2 characters seen in the fewest scenes: at most 3 of each kind" in r.stderr
    data = json.loads(cli("extract", script, "-p", styled, "--max-assets", "3", "--json").stdout)
    assert data["left_out"] == {"character": 2} and data["counts"]["character"] == 3
    # the assets left out were found, not vanished: a capped run marks nothing stale
    assert not _rows(styled, "SELECT name FROM project_assets WHERE stale = 1")
    fresh = tmp_path / "fresh"
    assert cli("init", fresh).exit_code == 0
    assert cli("style", "lock", "film-noir", "-p", fresh).exit_code == 0
    assert cli("extract", script, "-p", fresh, "--max-assets", "3").exit_code == 0
    assert _names(fresh, "character") == ["MARA", "ODO", "ROOK"]  # the most-seen, then earliest
    bad = cli("extract", script, "-p", fresh, "--max-assets", "0")
    assert bad.exit_code == 2 and "--max-assets" in bad.output


def test_the_cap_of_a_kind_is_applied_before_a_models_pass_2(styled, cli, script):
    with FakeLLM() as llm:
        r = _extract(cli, styled, script, llm, "--json", "--max-assets", "1")
        pass2 = [r for r in llm.requests if "Asset:" in r.body.decode()]
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    kinds = {t for (t,) in _rows(styled, "SELECT asset_type FROM project_assets")}
    assert data["counts"] == {k: 1 for k in ("character", "prop", "location")} and len(kinds) == 3
    assert data["left_out"] == {"character": 1, "location": 1}  # ROOK, DOCKS: seen least
    assert len(pass2) == 3  # no request for what was left out
    assert _names(styled, "character") == ["MARA"]


def test_a_script_of_thousands_of_speakers_keeps_the_cap(styled, cli, tmp_path):
    n = MAX_ASSETS_PER_KIND + 10
    syllables = ["KA", "LO", "MI", "RA", "TEN", "VO", "ZU", "BEL", "DOR", "FIN"]
    names = [syllables[i % 10] + syllables[i // 10 % 10] + syllables[i // 100 % 10]
             + syllables[i // 1000] + "EX" for i in range(n)]
    script = tmp_path / "many.fountain"
    script.write_text("".join(f"INT. ROOM - DAY\n\n{w}\nHello.\n\n" for w in names))
    r = cli("extract", script, "-p", styled, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["counts"]["character"] == MAX_ASSETS_PER_KIND
    assert data["left_out"] == {"character": 10}
    kept = {n.upper() for n in _names(styled, "character")}
    assert kept == set(names[:MAX_ASSETS_PER_KIND])  # each speaks once: the earliest are kept


def test_batch_lists_the_cap_among_a_scripts_warnings(tmp_path):
    """The pipeline every `batch` worker runs keeps to --max-assets (from the batch options)
    and reports the assets left out among the script's warnings."""
    from stage5cli.batch import BatchOptions
    from stage5cli.batch.options import Style
    from stage5cli.batch.worker import pipeline_options
    from stage5cli.pipeline import run

    script = tmp_path / "crowd.fountain"
    script.write_text(CROWD)
    opts = pipeline_options(BatchOptions(style="film-noir", out=tmp_path, max_assets=3),
                            Style(id="film-noir", sha256=""))
    res = run(tmp_path / "proj", script, opts)
    assert [w for w in res.warnings if "left out the 2 characters" in w], res.warnings
    assert res.counts["character"] == 3
