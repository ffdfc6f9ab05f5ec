"""Nothing is fetched (issue 17.7): every litellm-using command, run in a subprocess whose
sockets refuse (and record) any connection that is not to 127.0.0.1, attempts none.

The guard is a sitecustomize.py on PYTHONPATH: it wraps socket.socket.connect and
socket.getaddrinfo. LITELLM_LOCAL_MODEL_COST_MAP is removed from the environment, so the test
fails if any path imports litellm without stage5cli.litellm_env setting it first.

The commands run one after another in ONE subprocess (DRIVER: the Typer app per command, as
`python -m stage5cli` would run it), so litellm is imported once, not once per command. Only the
first import of litellm would fetch the price list, so the driver also checks every later one:
before each command it removes LITELLM_LOCAL_MODEL_COST_MAP again, and an import hook logs any
`import litellm` / `from litellm... import` made by stage5 code while the variable is unset
(what would have fetched in a fresh process). Batch workers forked from the driver inherit both
guards and write to the same log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

import pytest

from .conftest import REPO
from .fake_llm import FakeLLM

GUARD = r'''
import os, socket
_LOG = os.environ["STAGE5_NET_LOG"]
_LOOPBACK = {"127.0.0.1", "localhost", "::1", None, ""}

def _note(what):
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(what + "\n")

_connect = socket.socket.connect
def connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
        _note(f"connect {address!r}")
        raise OSError("network refused by the test guard")
    return _connect(self, address)
socket.socket.connect = connect

_gai = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    h = host.decode() if isinstance(host, bytes) else host
    if h not in _LOOPBACK:
        _note(f"getaddrinfo {h!r}")
        raise socket.gaierror("network refused by the test guard")
    return _gai(host, *a, **k)
socket.getaddrinfo = getaddrinfo
'''

DRIVER = r'''
import builtins, json, os, sys, traceback

_LOG = os.environ["STAGE5_NET_LOG"]
_import = builtins.__import__
def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if (level == 0 and (name == "litellm" or name.startswith("litellm."))
            and importer.split(".")[0] == "stage5cli"
            and not os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP")):
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{importer} imported {name} without LITELLM_LOCAL_MODEL_COST_MAP\n")
    return _import(name, globals, locals, fromlist, level)
builtins.__import__ = _guarded_import

from typer.testing import CliRunner
from stage5cli.cli import app

out = sys.stdout  # the protocol: one JSON line in (the arguments), one JSON line out
for line in sys.stdin:
    args = json.loads(line)
    os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)  # as in a fresh `stage5` process
    r = CliRunner().invoke(app, args, prog_name="stage5", catch_exceptions=True)
    err = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "".join(traceback.format_exception(r.exception))
    out.write("RESULT " + json.dumps({"returncode": r.exit_code, "stdout": r.stdout,
                                      "stderr": err}) + "\n")
    out.flush()
'''


@pytest.mark.slow
def test_no_litellm_command_touches_the_network(tmp_path):
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "net.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM")}
    env.update(PYTHONPATH=str(guard), STAGE5_NET_LOG=str(log), OPENAI_API_KEY="sk-test",
               NO_PROXY="*", COLUMNS="160")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(var, None)
    proj = tmp_path / "proj"
    script = REPO / "examples" / "scripts" / "the_last_lamp.fountain"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / script.name).write_bytes(script.read_bytes())

    driver = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    watchdog = threading.Timer(300, driver.kill)  # a hung command fails the test, not CI
    watchdog.start()

    def run(*args: str, ok: bool = True) -> dict:
        driver.stdin.write(json.dumps(list(args)) + "\n")
        driver.stdin.flush()
        for line in driver.stdout:  # (anything else printed to the real stdout is skipped)
            if line.startswith("RESULT "):
                r = json.loads(line[len("RESULT "):])
                break
        else:
            raise AssertionError(f"the driver died during {args}")
        if ok:
            assert r["returncode"] == 0, (args, r["stdout"], r["stderr"])
        assert "Traceback" not in r["stderr"], r["stderr"]
        return r

    try:
        with FakeLLM() as llm:
            base = llm.api_base
            run("init", str(proj))
            run("style", "lock", "film-noir", "-p", str(proj))
            run("extract", str(script), "-p", str(proj), "--model", "openai/fake", "--api-base", base)
            asset = json.loads(run("review", "-p", str(proj), "--json")["stdout"])[0]["name"]
            run("describe", asset, "-p", str(proj), "--model", "openai/fake", "--api-base", base)
            run("conflicts", asset, "--suggest", "-p", str(proj), "--model", "openai/fake",
                "--api-base", base, ok=False)
            run("generate", "--all", "--backend", "api", "--model", "openai/dall-e-3", "--dry-run",
                "-p", str(proj))
            run("doctor", "--model", "openai/gpt-4o-mini", ok=False)
            run("batch", str(scripts), "--style", "film-noir", "--out", str(tmp_path / "out"),
                "--model", "openai/fake", "--api-base", base, "--jobs", "1")
            driver.stdin.close()
            assert driver.wait(timeout=60) == 0
    finally:
        watchdog.cancel()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    attempts = log.read_text()
    assert attempts == "", f"network attempted:\n{attempts}"


def test_litellm_is_imported_in_one_place():
    """Every `import litellm` goes through stage5cli.litellm_env.import_litellm (which sets
    LITELLM_LOCAL_MODEL_COST_MAP first); a `from litellm.x import y` must follow a call to it."""
    pkg = REPO / "stage5cli"
    offenders = []
    for path in pkg.rglob("*.py"):
        if path.name == "litellm_env.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"\s*import litellm\b", line):
                offenders.append(f"{path.relative_to(REPO)}:{n}")
    assert not offenders, offenders
    assert "LITELLM_LOCAL_MODEL_COST_MAP" in (pkg / "litellm_env.py").read_text()
