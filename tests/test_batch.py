"""`stage5 batch`: inputs, project folders, the pipeline in worker processes, resuming, the
report, JUnit, exit codes, Ctrl-C, and the CI shell example."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from stage5cli import batch as b
from stage5cli.batch import worker
from stage5cli.errors import UsageError
from tests.conftest import one_line_error

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

TINY = """Title: {title}

INT. KITCHEN - NIGHT

ANNA PARK, 30s, in a green raincoat, turns a brass KEY in her fingers.

ANNA
Where does this one go?

EXT. GARDEN - DAY

BEN, 40s, waits by the iron gate with a LANTERN.

BEN
Here. It always went here.
"""


def script(path: Path, title: str = "Tiny") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TINY.format(title=title), encoding="utf-8")
    return path


def run(cli, *args, env: dict | None = None):
    return cli("batch", *args, env={"CI": "true", **(env or {})})


def load_report(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def by_script(report: dict) -> dict[str, dict]:
    return {Path(r["script"]).name: r for r in report["scripts"]}


def uid(project: Path) -> str:
    conn = sqlite3.connect(project / "stage5.db")
    try:
        return conn.execute("SELECT project_uid FROM project").fetchone()[0]
    finally:
        conn.close()


# ---- inputs and names (no processes) ---------------------------------------------------------


def test_discover_folders_globs_files_and_the_output_folder(tmp_path):
    a = script(tmp_path / "in" / "a.fountain")
    c = script(tmp_path / "in" / "sub" / "c.TXT")
    script(tmp_path / "in" / ".hidden" / "h.fountain")
    (tmp_path / "in" / "notes.md").write_text("not a script")
    script(tmp_path / "in" / "out" / "old.fountain")  # inside --out: never an input
    d = script(tmp_path / "other" / "d.fdx.bak")  # named explicitly: taken whatever its name
    found = b.discover([str(tmp_path / "in"), str(d), str(tmp_path / "in" / "*.fountain")],
                       exclude=tmp_path / "in" / "out")
    assert found == sorted([a.resolve(), c.resolve(), d.resolve()], key=lambda p: p.as_posix())


def test_discover_glob_recursive_and_errors(tmp_path):
    x = script(tmp_path / "s" / "deep" / "x.fountain")
    assert b.discover([str(tmp_path / "s" / "**" / "*.fountain")]) == [x.resolve()]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no scripts found"):
        b.discover([str(tmp_path / "empty")])
    with pytest.raises(UsageError, match="no such file or folder"):
        b.discover([str(tmp_path / "missing.fountain")])
    with pytest.raises(UsageError, match="no scripts found"):
        b.discover([str(tmp_path / "nothing-*.fountain")])


def test_project_names_disambiguate_collisions_by_path():
    paths = [Path("/z/pilot.fountain"), Path("/a/pilot.fountain"), Path("/m/Pilot.fdx"),
             Path("/b/pilot-2.txt"), Path("/c/My Script!.txt")]
    names = b.project_names(paths)
    assert names[Path("/a/pilot.fountain")] == "pilot"
    assert names[Path("/b/pilot-2.txt")] == "pilot-2"  # a real stem keeps its name
    assert names[Path("/m/Pilot.fdx")] == "Pilot-3"  # collisions are case-insensitive
    assert names[Path("/z/pilot.fountain")] == "pilot-4"
    assert names[Path("/c/My Script!.txt")] == "My-Script"
    assert len({n.lower() for n in names.values()}) == len(paths)
    # deterministic: the same inputs in any order get the same names
    assert b.project_names(list(reversed(paths))) == names


def test_options_hash_changes_with_what_changes_the_result():
    s = b.Style(id="film-noir", sha256="abc")
    base = b.BatchOptions(style="film-noir", out=Path("o"))
    h = b.options_hash(base, s)
    assert h == b.options_hash(b.BatchOptions(style="film-noir", out=Path("p"), jobs=7,
                                              api_base="http://x", llm_concurrency=2), s)
    assert h != b.options_hash(b.BatchOptions(style="film-noir", out=Path("o"), generate=True), s)
    assert h != b.options_hash(b.BatchOptions(style="film-noir", out=Path("o"), model="m"), s)
    assert h != b.options_hash(base, b.Style(id="film-noir", sha256="abd"))
    # the cap of a kind decides which assets there are: a change of it rebuilds
    assert h != b.options_hash(b.BatchOptions(style="film-noir", out=Path("o"), max_assets=5), s)


def test_junit_is_well_formed_with_hostile_text():
    res = replace(b.blank_result(b.Task(0, "/x/a<&>.fountain", "a<&>.fountain", "o/a", None,
                                        b.Style("s", "h"), "h", b.BatchOptions(style="s", out=Path("o")))),
                  error="bad \x00 byte & <tag> \x1b[31m")
    report = b.build_report([res], b.BatchOptions(style="s", out=Path("o")), b.Style("s", "h"),
                            started_at="t", wall_s=1.0, jobs=1)
    root = ET.fromstring(b.junit_xml(report).encode())
    case = root.find("testsuite/testcase")
    assert case.get("name") == "a<&>.fountain"
    assert "<tag>" in case.find("failure").get("message")
    assert root.get("failures") == "1" and root.get("tests") == "1"


# ---- bad usage: exit 2, one line, nothing created ---------------------------------------------


def test_folder_without_scripts_exits_2(cli, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.md").write_text("hello")
    r = run(cli, tmp_path / "in", "--style", "film-noir", "--out", tmp_path / "out")
    assert r.exit_code == 2
    assert "no scripts found" in one_line_error(r)
    assert not (tmp_path / "out").exists()


def test_out_is_a_file_exits_2(cli, tmp_path):
    script(tmp_path / "a.fountain")
    (tmp_path / "out").write_text("I am a file")
    r = run(cli, tmp_path / "a.fountain", "--style", "film-noir", "--out", tmp_path / "out")
    assert r.exit_code == 2
    assert "is a file" in one_line_error(r)


@pytest.mark.parametrize("extra,needle", [
    (["--style", "film-nior"], "did you mean: film-noir"),
    (["--style", "film-noir", "--jobs", "0"], "--jobs must be at least 1"),
    (["--style", "film-noir", "--max-assets", "0"], "--max-assets"),
    (["--style", "film-noir", "--llm-concurrency", "0"], "--llm-concurrency"),
    (["--style", "film-noir", "--lock"], "--lock needs --generate"),
    (["--style", "film-noir", "--export", "pdf"], "unknown export format"),
    (["--style", "film-noir", "--generate", "--backend", "paint"], "unknown image backend"),
    (["--style", "missing.yaml"], "no such file"),
])
def test_bad_usage_exits_2(cli, tmp_path, extra, needle):
    script(tmp_path / "a.fountain")
    r = run(cli, tmp_path / "a.fountain", "--out", tmp_path / "out", *extra)
    assert r.exit_code == 2, r.output
    assert needle in one_line_error(r)
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_style_file_reusing_a_builtin_id_exits_2(cli, tmp_path):
    script(tmp_path / "a.fountain")
    text = (EXAMPLES / "styles" / "harbour-ink.yaml").read_text()
    (tmp_path / "noir.yaml").write_text(text.replace("id: harbour-ink", "id: film-noir"))
    r = run(cli, tmp_path / "a.fountain", "--style", tmp_path / "noir.yaml", "--out",
            tmp_path / "out")
    assert r.exit_code == 2
    assert "is a built-in style" in one_line_error(r)


def test_scripts_inside_out_are_not_inputs(cli, tmp_path):
    script(tmp_path / "out" / "old" / "a.fountain")
    r = run(cli, tmp_path, "--style", "film-noir", "--out", tmp_path / "out")
    assert r.exit_code == 2
    assert "the --out folder is never searched" in one_line_error(r)


def test_report_path_that_is_a_folder_exits_2(cli, tmp_path):
    script(tmp_path / "a.fountain")
    (tmp_path / "rep").mkdir()
    r = run(cli, tmp_path / "a.fountain", "--style", "film-noir", "--out", tmp_path / "out",
            "--report", tmp_path / "rep")
    assert r.exit_code == 2
    assert "--report" in one_line_error(r)


# ---- the pipeline ------------------------------------------------------------------------------


def test_bad_scripts_fail_alone_and_the_report_says_why(cli, tmp_path):
    ins = tmp_path / "in"
    script(ins / "good_one.fountain", "One")
    script(ins / "good_two.fountain", "Two")
    (ins / "binary.fountain").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (ins / "empty.txt").write_text("")
    report, junit = tmp_path / "r" / "report.json", tmp_path / "r" / "junit.xml"
    r = run(cli, ins, "--style", "film-noir", "--out", tmp_path / "out", "--generate", "--lock",
            "--allow-placeholder", "--export", "json,html", "--jobs", "2", "--report", report, "--junit", junit)
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines()[-1].startswith("error: 2 script(s) failed")
    rep = load_report(report)
    s = by_script(rep)
    assert {k: v["status"] for k, v in s.items()} == {
        "good_one.fountain": "ok", "good_two.fountain": "ok", "binary.fountain": "failed",
        "empty.txt": "failed"}
    assert "binary" in s["binary.fountain"]["error"]
    assert "empty" in s["empty.txt"]["error"]
    good = s["good_one.fountain"]
    assert good["assets"] == sum(good["counts"].values()) > 0
    assert good["counts"]["character"] >= 2
    assert good["images"] == good["assets"] and good["stage"] == "locked"
    assert good["wall_s"] > 0 and good["tokens"] == 0 and good["cost_usd"] == 0.0
    proj = Path(good["project"])
    assert (proj / "export.json").is_file() and (proj / "contact-sheet" / "index.html").is_file()
    assert json.loads((proj / "export.json").read_text())["stage"]["status"] == "locked"
    assert b.read_marker(proj)["state"] == "done"
    assert b.read_marker(Path(s["binary.fountain"]["project"]))["state"] == "building"
    t = rep["totals"]
    assert (t["scripts"], t["ok"], t["failed"], t["skipped"]) == (4, 2, 2, 0)
    assert t["assets"] == sum(x["assets"] for x in rep["scripts"])
    # JUnit: one testcase per script, failures carry the error
    root = ET.parse(junit).getroot()
    cases = {Path(c.get("name")).name: c for c in root.iter("testcase")}
    assert set(cases) == set(s)
    assert root.get("failures") == "2" and root.get("tests") == "4"
    assert cases["binary.fountain"].find("failure") is not None
    assert cases["good_one.fountain"].find("failure") is None
    assert not list(report.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_same_stem_in_two_folders_gets_two_projects(cli, tmp_path):
    a = script(tmp_path / "season1" / "pilot.fountain", "Season one")
    c = script(tmp_path / "season2" / "pilot.fountain", "Season two")
    r = run(cli, tmp_path / "season1", tmp_path / "season2", "--style", "film-noir",
            "--out", tmp_path / "out", "--jobs", "2", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    projects = {Path(x["script"]).resolve(): Path(x["project"]) for x in rep["scripts"]}
    assert projects[a.resolve()].name == "pilot" and projects[c.resolve()].name == "pilot-2"
    for src, proj in projects.items():
        conn = sqlite3.connect(proj / "stage5.db")
        path = conn.execute("SELECT script_path FROM stage_state").fetchone()[0]
        conn.close()
        assert not Path(path).is_absolute() and (proj / path).resolve() == src  # project-relative


def test_rerun_skips_force_redoes_and_changes_redo_only_what_changed(cli, tmp_path):
    ins, out = tmp_path / "in", tmp_path / "out"
    script(ins / "a.fountain", "A")
    script(ins / "b.fountain", "B")
    args = [ins, "--style", "film-noir", "--out", out, "--jobs", "2", "--json"]
    first = run(cli, *args)
    assert first.exit_code == 0, first.output
    uids = {n: uid(out / n) for n in ("a", "b")}

    again = run(cli, *args)
    assert again.exit_code == 0
    rep = json.loads(again.stdout)
    assert [x["status"] for x in rep["scripts"]] == ["skipped", "skipped"]
    assert all(x["reason"] == b.UP_TO_DATE for x in rep["scripts"])
    assert rep["scripts"][0]["assets"] > 0  # the counts of the run that made it
    assert {n: uid(out / n) for n in ("a", "b")} == uids  # untouched

    (ins / "b.fountain").write_text(TINY.format(title="B") + "\nINT. CELLAR - NIGHT\n\nDark.\n")
    changed = json.loads(run(cli, *args).stdout)
    assert [x["status"] for x in changed["scripts"]] == ["skipped", "ok"]
    assert uid(out / "a") == uids["a"] and uid(out / "b") != uids["b"]

    other_options = json.loads(run(cli, *args, "--export", "yaml").stdout)
    assert [x["status"] for x in other_options["scripts"]] == ["ok", "ok"]
    assert (out / "a" / "export.yaml").is_file()

    forced = run(cli, *args, "--export", "yaml", "--force")
    assert [x["status"] for x in json.loads(forced.stdout)["scripts"]] == ["ok", "ok"]
    assert uid(out / "a") != uids["a"]


def test_unfinished_project_is_rebuilt_and_foreign_folders_are_left_alone(cli, tmp_path):
    ins, out = tmp_path / "in", tmp_path / "out"
    for n in ("a", "b", "c"):
        script(ins / f"{n}.fountain", n)
    args = [ins, "--style", "film-noir", "--out", out, "--jobs", "2", "--json"]
    assert run(cli, *args).exit_code == 0
    # a batch killed while building b: its marker still says `building`
    (out / "b" / b.MARKER).write_text(json.dumps({"version": 1, "state": "building"}))
    old_uid = uid(out / "a")
    # and a folder left by a run killed inside init: no database, no marker
    script(ins / "d.fountain", "d")
    (out / "d" / "images").mkdir(parents=True)
    (out / "d" / ".stage5.db.init-999").write_bytes(b"half")
    r = run(cli, *args)
    assert r.exit_code == 0, r.output
    s = by_script(json.loads(r.stdout))
    assert s["a.fountain"]["status"] == "skipped" and uid(out / "a") == old_uid
    assert s["d.fountain"]["status"] == "ok" and not (out / "d" / ".stage5.db.init-999").exists()
    assert s["b.fountain"]["status"] == "ok" and b.read_marker(out / "b")["state"] == "done"
    # a folder that batch did not make sits where c's project would go: exit 2, nothing runs
    import shutil

    shutil.rmtree(out / "c")
    (out / "c").mkdir()
    (out / "c" / "precious.txt").write_text("do not delete")
    b_marker = (out / "b" / b.MARKER).read_text()
    r = run(cli, *args, "--force")
    assert r.exit_code == 2
    assert str(out / "c") in r.output and "not a stage5 project batch made" in r.output
    assert (out / "c" / "precious.txt").read_text() == "do not delete"
    assert (out / "b" / b.MARKER).read_text() == b_marker


def test_style_file_and_fail_fast(cli, tmp_path):
    ins = tmp_path / "in"
    (ins).mkdir()
    (ins / "a_broken.fountain").write_text("   \n")
    for n in ("b", "c", "d", "e"):
        script(ins / f"{n}.fountain", n)
    style = EXAMPLES / "styles" / "harbour-ink.yaml"
    r = run(cli, ins, "--style", style, "--out", tmp_path / "out", "--jobs", "1", "--fail-fast",
            "--json")
    assert r.exit_code == 1
    rep = json.loads(r.stdout)
    s = by_script(rep)
    assert s["a_broken.fountain"]["status"] == "failed"
    not_run = [x for x in rep["scripts"] if x.get("reason") == "not run (--fail-fast)"]
    assert not_run and all(x["status"] == "skipped" for x in not_run)
    ran = [x for x in rep["scripts"] if x["status"] == "ok"]
    assert len(ran) + len(not_run) == 4
    assert rep["options"]["style"] == "harbour-ink"
    for x in ran:
        conn = sqlite3.connect(Path(x["project"]) / "stage5.db")
        sid = conn.execute("SELECT s.style_id FROM stage_state t JOIN style_capsules s "
                           "ON s.id = t.locked_visual_style_capsule_id").fetchone()[0]
        conn.close()
        assert sid == "harbour-ink"


def test_plain_progress_lines_in_ci(cli, tmp_path):
    script(tmp_path / "in" / "a.fountain")
    r = run(cli, tmp_path / "in", "--style", "film-noir", "--out", tmp_path / "out", "-j", "2")
    assert r.exit_code == 0
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("batch: 1 script(s), 0 up to date, 1 to run")
    assert lines[1].startswith("[1/1] ok") and "a.fountain" in lines[1]
    assert "1 script(s): 1 ok, 0 failed, 0 skipped" in r.stdout


def test_live_table_renders_every_state():
    from io import StringIO

    from rich.console import Console

    from stage5cli.cli.commands.batch import LiveDisplay

    d = LiveDisplay()
    opts = b.BatchOptions(style="s", out=Path("o"))
    d(b.PlanEvent(tasks=[b.Task(i, f"/x/s{i}", f"s{i}[x].fountain", "p", None, b.Style("s", "h"),
                                "h", opts) for i in range(4)], to_run=4, jobs=2))
    d(b.StageEvent(0, "extract"))
    res = b.BatchResult(script="s1[x].fountain", project="p", status="failed",
                        error="boom [red]", wall_s=0.5)
    d(b.ResultEvent(1, res))
    con = Console(file=StringIO(), width=160, record=True)
    con.print(d._table())
    text = con.export_text()
    assert "s0[x].fountain" in text and "extract" in text and "running" in text
    assert "boom [red]" in text and "queued" in text
    assert "1/4 done" in text


def test_worker_backend_is_one_instance_per_process():
    worker._BACKENDS.clear()
    one = b.worker_backend("placeholder", None, None)
    assert b.worker_backend("placeholder", None, None) is one
    assert b.worker_backend("placeholder", "other", None) is not one


# ---- Ctrl-C, the LLM path, diffusers (subprocesses: slow) ----------------------------------------


def _cli_cmd() -> list[str]:
    return [sys.executable, "-m", "stage5cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(REPO),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test-not-real"}
    env.pop("STAGE5_MODEL", None)
    env.update(extra)
    return env


@pytest.mark.slow
def test_ctrl_c_stops_workers_writes_the_report_and_a_rerun_resumes(tmp_path):
    from tests.fake_llm import FakeLLM

    ins, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "report.json"
    for n in ("a", "b", "c"):
        script(ins / f"{n}.fountain", n)
    with FakeLLM(delay=0.8) as llm:
        args = [*_cli_cmd(), "batch", str(ins), "--style", "film-noir", "--out", str(out),
                "--model", "openai/fake", "--api-base", llm.api_base, "--jobs", "1",
                "--report", str(report), "--junit", str(tmp_path / "junit.xml")]
        proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stderr=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        for line in proc.stderr:  # wait for the first script to finish
            if line.startswith("[1/3]") or time.time() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "interrupted" in err.strip().splitlines()[-1]
        rep = load_report(report)
        assert rep["interrupted"] is True
        s = by_script(rep)
        assert s["a.fountain"]["status"] == "ok" and s["a.fountain"]["requests"] > 0
        assert [s[n]["status"] for n in ("b.fountain", "c.fountain")] == ["failed", "failed"]
        assert s["c.fountain"]["error"] == b.INTERRUPTED
        junit = ET.parse(tmp_path / "junit.xml").getroot()
        assert junit.get("failures") == "2"
        # no worker is left behind
        time.sleep(0.2)
        ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                            text=True)
        assert ps.stdout.strip() == ""
    with FakeLLM() as llm:  # the API base is not part of the options: a re-run resumes
        args[args.index("--api-base") + 1] = llm.api_base
        done = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        s = by_script(load_report(report))
        assert [s[n]["status"] for n in ("a.fountain", "b.fountain", "c.fountain")] == [
            "skipped", "ok", "ok"]
        assert s["b.fountain"]["tokens"] > 0 and s["b.fountain"]["assets"] > 0


@pytest.mark.slow
def test_llm_requests_share_one_cap_across_workers(tmp_path):
    from tests.fake_llm import FakeLLM

    ins = tmp_path / "in"
    for n in ("a", "b", "c"):
        script(ins / f"{n}.fountain", n)
    with FakeLLM(delay=0.3) as llm:
        args = [*_cli_cmd(), "batch", str(ins), "--style", "film-noir", "--out",
                str(tmp_path / "out"), "--model", "openai/fake", "--api-base", llm.api_base,
                "--jobs", "3", "--llm-concurrency", "2", "--json"]
        r = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0, r.stderr
        spans = sorted((q.started, q.finished) for q in llm.requests)
    assert len(spans) >= 6  # pass 1 and pass 2 of three scripts
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak <= 2


@pytest.mark.slow
def test_diffusers_pipeline_loads_once_per_worker(tiny_model, tmp_path):
    model = tiny_model
    style = tmp_path / "fast.yaml"
    text = (EXAMPLES / "styles" / "harbour-ink.yaml").read_text()
    style.write_text(text.replace("id: harbour-ink", "id: fast-ink").replace("steps: 28", "steps: 1"))
    for n in ("a", "b"):  # two assets each: the smallest useful run
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{n}.fountain").write_text(f"INT. ROOM {n.upper()} - DAY\n\nANNA\nHello.\n")
    r = subprocess.run([*_cli_cmd(), "batch", str(tmp_path / "in"), "--style", str(style),
                        "--out", str(tmp_path / "out"), "--generate", "--backend", "diffusers",
                        "--image-model", str(model), "--jobs", "1", "--json"],
                       cwd=tmp_path, env=_env(HF_HUB_OFFLINE="1"), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [x["status"] for x in rep["scripts"]] == ["ok", "ok"]
    assert all(x["images"] == x["assets"] > 0 for x in rep["scripts"])
    # one worker, two scripts: the second script reused the pipeline the first one loaded
    assert [x["backend_loads"] for x in rep["scripts"]] == [1, 1]


# ---- the CI examples ------------------------------------------------------------------------------


def test_example_style_and_scripts_are_valid():
    from stage5cli.screenplay import load
    from stage5cli.styles import load_yaml_file

    assert load_yaml_file(EXAMPLES / "styles" / "harbour-ink.yaml").id == "harbour-ink"
    formats = {load(p).source.format for p in (EXAMPLES / "scripts").iterdir()}
    assert {"fountain", "fdx", "plain"} <= formats


@pytest.mark.slow
def test_shell_example_end_to_end(tmp_path):
    sh = EXAMPLES / "ci" / "run-batch.sh"
    # reuse this interpreter (no virtualenv, no pip, no network)
    r = subprocess.run(["bash", str(sh)], cwd=tmp_path, env=_env(STAGE5_PYTHON=sys.executable),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = load_report(tmp_path / "report.json")
    n = len([p for p in (EXAMPLES / "scripts").iterdir() if p.suffix in b.SCRIPT_EXTENSIONS])
    assert rep["totals"]["ok"] == n and rep["totals"]["failed"] == 0
    assert all(x["stage"] == "locked" for x in rep["scripts"])
    assert ET.parse(tmp_path / "junit.xml").getroot().get("tests") == str(n)
    # batch's exit code is the script's: a broken script among the inputs fails the job
    # (this time through an executable, as STAGE5_BIN=/path/to/stage5 would be)
    wrapper = tmp_path / "bin" / "stage5"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m stage5cli "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.fountain").write_bytes(b"\x00" * 64)
    env = _env(STAGE5_BIN=str(wrapper), STAGE5_INPUT=str(tmp_path / "bad"))
    r = subprocess.run(["bash", str(sh)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert load_report(tmp_path / "report.json")["totals"]["failed"] == 1


def test_lock_passes_strict_and_allow_placeholder_through(cli, tmp_path):
    lamp = EXAMPLES / "scripts" / "the_last_lamp.fountain"  # MARA's coat: blue vs red
    common = ["--style", "film-noir", "--generate", "--lock", "--jobs", "1"]
    r = run(cli, lamp, *common, "--out", tmp_path / "a", "--report", tmp_path / "a.json")
    assert r.exit_code == 1  # placeholder images are not signed off without the flag
    assert "placeholder" in by_script(load_report(tmp_path / "a.json"))[lamp.name]["error"]
    r = run(cli, lamp, *common, "--allow-placeholder", "--strict", "--out", tmp_path / "b",
            "--report", tmp_path / "b.json")
    assert r.exit_code == 1  # --strict: the unresolved conflict fails the script
    assert "conflict" in by_script(load_report(tmp_path / "b.json"))[lamp.name]["error"]
    r = run(cli, lamp, *common, "--allow-placeholder", "--out", tmp_path / "c",
            "--report", tmp_path / "c.json")
    assert r.exit_code == 0, r.output
    rep = load_report(tmp_path / "c.json")
    assert by_script(rep)[lamp.name]["stage"] == "locked"
    assert rep["options"]["allow_placeholder"] is True and rep["options"]["strict"] is False
