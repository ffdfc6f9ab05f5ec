"""API keys never land in the project, the call log, events, exports or output."""

from __future__ import annotations

import base64
import io
import json

from tests.fake_llm import FakeLLM
from tests.loopback import LoopbackServer, Reply

KEY = "sk-test-SECRET-4f9c2d7e1a6b5c8d"
SCRIPT = ("INT. KITCHEN - DAY\n\nMARA, 60s, in a blue coat, pours tea from a KETTLE.\n\n"
          "MARA\nSit down.\n\nEXT. GARDEN - NIGHT\n\nMara in a red coat.\n\nMARA\nGo.\n")


def _png() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _everything(root, outputs: list[str]) -> bytes:
    blob = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    return blob + "".join(outputs).encode()


def test_keys_never_stored_or_printed(styled, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("STAGE5_RETRY_BACKOFF", "0")
    script = tmp_path / "s.fountain"
    script.write_text(SCRIPT)
    outputs: list[str] = []

    def run(*args):
        r = cli(*args, "-p", styled)
        outputs.extend([r.stdout, r.stderr])
        return r

    with FakeLLM() as llm:
        assert run("extract", script, "--model", "openai/fake", "--api-base", llm.api_base).exit_code == 0
        assert run("describe", "MARA", "--model", "openai/fake", "--api-base", llm.api_base).exit_code == 0
    with FakeLLM(auth_error=True) as llm:  # the provider echoes the Authorization header
        r = run("extract", script, "--model", "openai/fake", "--api-base", llm.api_base, "--no-cache")
        assert r.exit_code != 0
    with LoopbackServer(lambda req: Reply(200, {"data": [{"b64_json": _png()}]})) as srv:
        assert run("generate", "--all", "--backend", "api", "--model", "openai/img",
                   "--api-base", srv.url + "/v1", "--yes").exit_code == 0
        # a provider error that quotes the key back
        with LoopbackServer(lambda req: Reply(401, {"error": {"message": f"bad key {KEY}"}})) as bad:
            run("generate", "MARA", "--backend", "api", "--model", "openai/img",
                "--api-base", bad.url + "/v1", "--yes")
    assert run("lock-all", "--yes").exit_code == 0, outputs[-1]
    assert run("export", "--out", str(styled / "export.json")).exit_code == 0
    assert run("export", "--format", "html", "--out", str(styled / "sheet")).exit_code == 0
    run("history", "--json")
    run("jobs", "--json")
    run("doctor", "--model", "openai/fake")
    data = _everything(styled, outputs)
    assert KEY.encode() not in data
    assert KEY[8:].encode() not in data  # not even a fragment
    # and the call log really was written (the test looks where a leak would be)
    import sqlite3

    conn = sqlite3.connect(styled / "stage5.db")
    assert conn.execute("SELECT count(*) FROM llm_calls").fetchone()[0] >= 2
    assert json.loads(conn.execute("SELECT request FROM llm_calls LIMIT 1").fetchone()[0])
