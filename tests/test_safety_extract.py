"""Issue 14 items 4, 5, 6 and 9 from the CLI: a failed run changes nothing it did not finish,
a provider's text is scrubbed before it is stored, names are data, a model's sizes are capped."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import pytest

from stage5cli.store import MAX_ALIASES, MAX_MENTIONS

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
