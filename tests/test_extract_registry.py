"""extract/registry.py and extract/base.py: which extractor --model / $STAGE5_MODEL / builtin
names, its options, and the commands that resolve through it (doctor, describe, conflicts)."""

from __future__ import annotations

import json
import threading

import pytest

from stage5cli.errors import UsageError
from stage5cli.extract.base import ExtractionResult, Extractor, LLMOptions
from stage5cli.extract.registry import resolve, resolve_model

from .conftest import one_line_error
from .helpers import TRIO, add_assets

DEAD_SERVER = "http://127.0.0.1:9/v1"  # nothing listens: a request would fail at once


# ---- resolving a --model value -------------------------------------------------------------


@pytest.mark.parametrize("word", ["builtin", "BUILTIN", "Builtin", "none", "offline", "", "  "])
def test_the_builtin_words_mean_no_model(word, monkeypatch):
    assert resolve_model(word) is None
    monkeypatch.setenv("STAGE5_MODEL", word)
    assert resolve_model(None) is None
    ex = resolve(None)
    assert ex.extractor_id == "builtin" and ex.model is None and not ex.needs_key


def test_env_var_names_the_model_when_no_flag(monkeypatch):
    assert resolve_model(None) is None
    monkeypatch.setenv("STAGE5_MODEL", "openai/from-env")
    assert resolve_model(None) == "openai/from-env"
    assert resolve(None).model == "openai/from-env"
    assert resolve_model(None, env=False) is None  # the Python API reads options as given
    assert resolve(None, env=False).extractor_id == "builtin"


def test_explicit_model_beats_the_env_var(monkeypatch):
    monkeypatch.setenv("STAGE5_MODEL", "openai/from-env")
    ex = resolve("anthropic/claude-3-5-haiku-latest")
    assert ex.extractor_id == "llm" and ex.needs_key
    assert ex.model == "anthropic/claude-3-5-haiku-latest"
    # the word builtin on the command line wins over a model in the environment
    assert resolve("builtin").extractor_id == "builtin"


def test_api_base_and_settings_reach_the_llm_options():
    ex = resolve(" openai/local ", api_base="http://127.0.0.1:8080/v1", concurrency=3, timeout=5)
    assert isinstance(ex.options, LLMOptions)
    assert (ex.model, ex.options.api_base) == ("openai/local", "http://127.0.0.1:8080/v1")
    assert (ex.options.concurrency, ex.options.timeout) == (3, 5)
    base = LLMOptions(model="openai/a", api_base="http://x/v1", chunk_tokens=900)
    ex = resolve(options=base)
    assert (ex.model, ex.options.api_base, ex.options.chunk_tokens) == ("openai/a", "http://x/v1", 900)
    assert resolve("openai/b", options=base).model == "openai/b"  # the flag wins
    assert base.model == "openai/a"  # the caller's options are not changed
    with pytest.raises(TypeError, match="concurency"):
        resolve("openai/x", concurency=2)


def test_both_extractors_implement_the_interface():
    for ex in (resolve("builtin"), resolve("openai/x")):
        assert isinstance(ex, Extractor)
        assert ex.extractor_id in ("builtin", "llm")
        assert isinstance(ex.noun, str) and isinstance(ex.name, str)
    assert resolve("builtin").key_env_var is None
    assert resolve("builtin").name == "built-in" and resolve("openai/x").name == "openai/x"


# ---- options and results -------------------------------------------------------------------


def test_options_round_trip():
    gate = threading.Semaphore(2)
    opts = LLMOptions(model="openai/x", api_base="http://h/v1", concurrency=4, timeout=12.5,
                      chunk_tokens=800, use_cache=False, max_bytes=1234, max_retries=1,
                      retry_backoff=0.5, gate=gate)
    data = opts.model_dump()
    assert "gate" not in data  # a process-local object is never serialised
    again = LLMOptions.model_validate(data)
    assert again.model_copy(update={"gate": gate}) == opts
    assert LLMOptions.model_validate_json(opts.model_dump_json()) == again
    assert LLMOptions() == LLMOptions.model_validate(LLMOptions().model_dump())


def test_retry_backoff_defaults_to_the_env_var(monkeypatch):
    assert LLMOptions().backoff() == 1.0
    monkeypatch.setenv("STAGE5_RETRY_BACKOFF", "0.25")
    assert LLMOptions().backoff() == 0.25
    assert LLMOptions(retry_backoff=3).backoff() == 3  # an explicit value wins
    monkeypatch.setenv("STAGE5_RETRY_BACKOFF", "soon")
    with pytest.raises(UsageError, match="STAGE5_RETRY_BACKOFF"):
        LLMOptions(model="openai/x").check()


def test_extraction_result_stats():
    r = ExtractionResult(assets=[], requests=3, cache_hits=1, input_tokens=10, output_tokens=4,
                         cost_usd=None)
    assert r.stats() == {"requests": 3, "cache_hits": 1, "input_tokens": 10, "output_tokens": 4,
                         "cost_usd": None}
    assert ExtractionResult(assets=[]).stats()["cost_usd"] == 0.0


def test_python_api_does_not_read_the_env_var(styled, monkeypatch, tmp_path):
    """LLMOptions() means the built-in extractor even with $STAGE5_MODEL set (demo, batch and
    the Python API decide the model themselves)."""
    from stage5cli.extract.service import run
    from stage5cli.project import open_project

    script = tmp_path / "s.fountain"
    script.write_text("INT. KITCHEN - DAY\n\nMARA lights the LANTERN.\n\nMARA\nThere.\n")
    monkeypatch.setenv("STAGE5_MODEL", "openai/never-called")
    monkeypatch.setenv("STAGE5_RETRY_BACKOFF", "not read either")
    outcome = run(open_project(styled), script, LLMOptions())
    assert (outcome.extractor, outcome.model) == ("builtin", None)
    assert outcome.counts["character"] >= 1 and outcome.stats["requests"] == 0
    outcome = run(open_project(styled), script, LLMOptions(model="builtin"))
    assert outcome.extractor == "builtin"


# ---- commands that resolve through the registry -------------------------------------------


def _checks(r) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(r.stdout)["checks"]}


def test_doctor_with_stage5_model_builtin(styled, cli):
    r = cli("doctor", "--json", "-p", styled, env={"STAGE5_MODEL": "builtin"})
    assert r.exit_code == 0, r.output
    checks = _checks(r)
    assert checks["LLM"]["ok"] and checks["LLM"]["detail"].startswith("no model configured")
    assert not any(name.startswith("LLM ") for name in checks)  # no model called "builtin"
    r = cli("doctor", "--json", "--model", "offline", "-p", styled)
    assert _checks(r)["LLM"]["detail"].startswith("no model configured")


def test_describe_honours_the_retry_backoff_setting(styled, cli):
    add_assets(styled, TRIO)
    r = cli("describe", "MARA", "--model", "openai/x", "--api-base", DEAD_SERVER, "-p", styled,
            env={"STAGE5_RETRY_BACKOFF": "soon"})
    assert r.exit_code == 2
    assert "STAGE5_RETRY_BACKOFF" in one_line_error(r)
    assert "sixties" in cli("show", "MARA", "--json", "-p", styled).stdout  # nothing changed


def test_conflicts_suggest_honours_the_retry_backoff_setting(styled, cli):
    add_assets(styled, TRIO, conflicts=("MARA",))
    r = cli("conflicts", "MARA", "--suggest", "--model", "openai/x", "--api-base", DEAD_SERVER,
            "-p", styled, env={"STAGE5_RETRY_BACKOFF": "-1"})
    assert r.exit_code == 2
    assert "STAGE5_RETRY_BACKOFF" in one_line_error(r)
    # without a model the offline rule answers, and reads no LLM setting
    r = cli("conflicts", "MARA", "--suggest", "--json", "-p", styled,
            env={"STAGE5_RETRY_BACKOFF": "-1", "STAGE5_MODEL": "builtin"})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["method"] != "llm"


def test_the_caller_waits_what_the_setting_says(tmp_path, monkeypatch):
    """describe, conflicts and extract build their Caller from the same LLMOptions, so the
    first retry wait is $STAGE5_RETRY_BACKOFF for all of them."""
    from stage5cli import db as dbm
    from stage5cli import migrations
    from stage5cli.extract.llm_calls import Caller

    d = dbm.connect(tmp_path / "t.db", create=True)
    migrations.migrate(d)
    monkeypatch.setenv("STAGE5_RETRY_BACKOFF", "0.125")
    assert Caller(d, resolve("openai/x", api_base=DEAD_SERVER).options).first_backoff == 0.125
    assert Caller(d, LLMOptions(model="openai/x", retry_backoff=2)).first_backoff == 2
