"""Issue 14: nothing of the user's is lost or touched, errors say what happened, no orphans.

Each test names the guarantee it checks; each failed on the code before the fix.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import one_line_error, table_dump
from tests.helpers import TRIO, add_assets

TINY = "Title: T\n\nINT. KITCHEN - DAY\n\nMARA pours tea.\n\nMARA\nSit down.\n"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---- 1. never delete or replace what stage5 did not create ------------------------------------


def test_batch_never_deletes_a_project_it_did_not_make(cli, tmp_path):
    ins, out = tmp_path / "in", tmp_path / "out"
    ins.mkdir()
    (ins / "a.fountain").write_text(TINY)
    # the user's own project (made with stage5 init, not by batch) where a's output would go
    assert cli("init", out / "a").exit_code == 0
    (out / "a" / "notes.txt").write_text("mine")
    before = (out / "a" / "stage5.db").read_bytes()
    r = cli("batch", ins, "--style", "film-noir", "--out", out, env={"CI": "true"})
    assert r.exit_code == 2, r.output
    assert str(out / "a") in one_line_error(r)
    assert (out / "a" / "notes.txt").read_text() == "mine"
    assert (out / "a" / "stage5.db").read_bytes() == before


def test_doctor_fix_removes_only_its_own_stale_temp_files(project, cli):
    images = project / "images"
    user_files = {".gitkeep": b"", "notes.tmp.txt": b"notes", "moodboard.png": b"\x89PNG mine",
                  ".hidden.9.tmp": b"not our pattern"}
    for name, data in user_files.items():
        (images / name).write_bytes(data)
    ours = images / f".MARA-1.png.{_dead_pid()}.abcd1234.tmp"
    ours.write_bytes(b"half an image")
    r = cli("doctor", "--fix", "--json", "-p", project)
    report = json.loads(r.stdout)
    assert not ours.exists()
    for name, data in user_files.items():
        assert (images / name).read_bytes() == data, name
    assert not (images / ".trash").exists() or not any((images / ".trash").iterdir())
    unref = next(c for c in report["checks"] if c["name"] == "unreferenced files")
    assert "moodboard.png" in unref["detail"]


def test_images_folder_outside_the_project_is_refused(styled, cli, tmp_path):
    outside = tmp_path / "etc-decoy"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    images = styled / "images"
    os.rmdir(images)
    images.symlink_to(outside, target_is_directory=True)
    add_assets(styled, TRIO[:1])
    r = cli("generate", "--all", "--yes", "-p", styled)
    assert r.exit_code == 2, r.output
    assert "outside the project" in one_line_error(r)
    cli("doctor", "--fix", "-p", styled)
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]
    assert (outside / "passwd").read_text() == "root:x:0:0"


def test_atomic_writes_keep_symlinks_devices_and_the_umask(tmp_path):
    from stage5cli import files

    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    files.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"

    old = os.umask(0o022)
    try:
        files.write_text(tmp_path / "report.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644

    files.write_text(Path("/dev/null"), "discarded")  # written to, never renamed over
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        files.write_text(fifo, "x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# ---- 7. errors say what happened ---------------------------------------------------------------


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "scripts"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                                            str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (RLIMIT_FSIZE test covers the rest)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_reported_as_disk_full(small_disk, cli):
    import shutil

    root = small_disk / "p"
    assert cli("init", root).exit_code == 0
    assert cli("style", "lock", "film-noir", "-p", root).exit_code == 0
    before = table_dump(root / "stage5.db")
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"x" * (st.f_bavail * st.f_frsize - 48 * 1024))
    r = subprocess.run([sys.executable, "-m", "stage5cli", "extract",
                        str(EXAMPLES / "the_night_ferry.fdx"), "-p", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "disk is full" in r.stderr and "damaged" not in r.stderr, r.stderr
    (small_disk / "filler").unlink()
    assert table_dump(root / "stage5.db") == before
    shutil.rmtree(root)


def test_a_write_past_the_file_size_limit_is_not_masked_as_damage(styled):
    """RLIMIT_FSIZE: SQLite reports an I/O error, and no second ROLLBACK hides it."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))

    before = table_dump(styled / "stage5.db")
    r = subprocess.run([sys.executable, "-m", "stage5cli", "extract",
                        str(EXAMPLES / "the_night_ferry.fdx"), "-p", str(styled)],
                       capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "disk" in r.stderr and "no transaction is active" not in r.stderr, r.stderr
    assert "damaged" not in r.stderr, r.stderr
    assert table_dump(styled / "stage5.db") == before


def test_read_only_database_is_reported_as_read_only(project):
    from stage5cli.errors import describe_unexpected

    conn = sqlite3.connect(f"file:{project / 'stage5.db'}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as e:
        conn.execute("UPDATE project SET created_at = 'x'")
    conn.close()
    line = describe_unexpected(e.value)
    assert "read-only" in line and "damaged" not in line


@pytest.mark.parametrize("damage, command", [
    ("UPDATE project SET active_branch_id = 999", ["status"]),
    ("UPDATE project_assets SET metadata = 'not json{'", ["show", "MARA"]),
])
def test_hand_corrupted_rows_give_one_clear_line_and_doctor_finds_them(damage, command, styled, cli):
    add_assets(styled, TRIO)
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute(damage)
    conn.commit()
    conn.close()
    r = cli(*command, "-p", styled)
    assert r.exit_code != 0
    line = one_line_error(r)
    assert "unexpected" not in line and "doctor" in line, line
    r = cli("doctor", "--json", "-p", styled)
    assert r.exit_code == 1
    rows = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "rows")
    assert not rows["ok"] and rows["detail"]


def test_malformed_image_api_answer_stores_one_line(styled, cli, monkeypatch):
    from tests.loopback import LoopbackServer, Reply

    add_assets(styled, TRIO[:1])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000000")
    monkeypatch.setenv("STAGE5_RETRY_BACKOFF", "0")
    with LoopbackServer(lambda req: Reply(200, {"data": [{"b64_json": 123}]})) as srv:
        r = cli("generate", "MARA", "--backend", "api", "--model", "openai/test-image",
                "--api-base", srv.url + "/v1", "--yes", "-p", styled)
    assert r.exit_code == 1
    assert "serializer" not in r.stderr.lower()
    one_line_error(r)
    conn = sqlite3.connect(styled / "stage5.db")
    (error,) = conn.execute("SELECT error FROM image_generation_jobs").fetchone()
    conn.close()
    assert error and "\n" not in error and "Traceback" not in error, error
    assert base64  # (the answer's image field is not base64 at all)


# ---- 8. orphans --------------------------------------------------------------------------------


def test_batch_rerun_refused_while_an_earlier_runs_processes_hold_the_out_folder(cli, tmp_path):
    import fcntl

    ins, out = tmp_path / "in", tmp_path / "out"
    ins.mkdir()
    out.mkdir()
    (ins / "a.fountain").write_text(TINY)
    # what an orphaned worker of a killed run holds: the out folder's lock
    fd = os.open(out / ".stage5-batch.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = cli("batch", ins, "--style", "film-noir", "--out", out, env={"CI": "true"})
    finally:
        os.close(fd)
    assert r.exit_code == 2, r.output
    assert "still using" in one_line_error(r)
    assert not (out / "a").exists()
    r = cli("batch", ins, "--style", "film-noir", "--out", out, env={"CI": "true"})
    assert r.exit_code == 0, r.output


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_batch_workers_exit_when_the_parent_is_killed(tmp_path):
    from tests.fake_llm import FakeLLM

    ins, out = tmp_path / "in", tmp_path / "out"
    ins.mkdir()
    for n in ("a", "b"):
        (ins / f"{n}.fountain").write_text(TINY)
    with FakeLLM(hang=60) as llm:
        env = {**os.environ, "CI": "true", "OPENAI_API_KEY": "sk-test-000", "STAGE5_RETRY_BACKOFF": "0"}
        parent = subprocess.Popen(
            [sys.executable, "-m", "stage5cli", "batch", str(ins), "--style", "film-noir",
             "--out", str(out), "--jobs", "2", "--model", "openai/fake", "--api-base",
             llm.api_base, "--timeout", "120"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers: list[int] = []
        try:
            for _ in range(600):  # until both workers are waiting on the model
                if len(llm.requests) >= 2:
                    break
                time.sleep(0.1)
            workers = _children(parent.pid)
            assert workers, "no worker processes"
            parent.kill()
            parent.wait()
            for _ in range(300):
                alive = [w for w in workers if _running(w)]
                if not alive:
                    break
                time.sleep(0.1)
            assert not alive, f"workers outlived the killed batch: {alive}"
        finally:
            parent.kill()
            for w in workers:
                if _running(w):
                    os.kill(w, 9)
