"""generate / jobs through the CLI with the placeholder backend: sizes, style, jobs, resume."""

from __future__ import annotations

import json
import sqlite3

import pytest
from PIL import Image

from stage5cli.images.png import read_png_metadata
from tests.conftest import one_line_error, table_dump
from tests.helpers import TRIO, add_assets


def _jobs(root):
    conn = sqlite3.connect(root / "stage5.db")
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute("SELECT * FROM image_generation_jobs ORDER BY id")]


def test_generate_all_exact_sizes_style_and_metadata(styled, cli):
    add_assets(styled, TRIO)
    r = cli("generate", "--all", "-p", styled, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert sorted(out["done"]) == sorted(n for n, _, _ in TRIO) and out["failed"] == []
    review = {a["name"]: a for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    expected = {"character": (512, 768), "prop": (512, 512), "location": (1024, 576)}
    for name, kind, _ in TRIO:
        a = review[name]
        path = styled / a["image_key_url"]
        assert a["image_key_url"].startswith("images/") and path.is_file()
        with Image.open(path) as im:
            assert im.size == expected[kind]
        meta = read_png_metadata(path)
        assert "1940s film noir still of " + name in meta["parameters"]
        assert "Negative prompt:" in meta["parameters"]
        assert meta["stage5"]["style_id"] == "film-noir" and meta["stage5"]["asset_id"] == a["id"]
        assert a["image_prompt"].startswith("1940s film noir still of")
    jobs = _jobs(styled)
    assert [j["status"] for j in jobs] == ["done"] * 3
    assert all(j["style_sha256"] and j["negative_prompt"] and j["finished_at"] for j in jobs)
    assert not list((styled / "images").glob("*.tmp*"))


def test_generate_is_deterministic(styled, cli):
    add_assets(styled, TRIO[:1])
    cli("generate", "MARA", "-p", styled)
    first = (styled / json.loads(cli("review", "--json", "-p", styled).stdout)[0]["image_key_url"]).read_bytes()
    cli("generate", "MARA", "-p", styled)
    second = (styled / json.loads(cli("review", "--json", "-p", styled).stdout)[0]["image_key_url"]).read_bytes()
    assert first == second
    r = cli("generate", "MARA", "--seed", "99", "-p", styled)
    assert r.exit_code == 0
    third = (styled / json.loads(cli("review", "--json", "-p", styled).stdout)[0]["image_key_url"]).read_bytes()
    assert third != first


def test_missing_only_generates_what_is_missing(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "MARA", "-p", styled)
    r = cli("generate", "--missing", "-p", styled, "--json")
    assert sorted(json.loads(r.stdout)["done"]) == ["BRASS TELESCOPE", "LIGHTHOUSE LAMP ROOM"]
    r = cli("generate", "--missing", "-p", styled, "--json")
    assert json.loads(r.stdout)["done"] == []


def test_dry_run_changes_nothing(styled, cli):
    add_assets(styled, TRIO)
    before = table_dump(styled / "stage5.db")
    r = cli("generate", "--all", "--dry-run", "--json", "-p", styled)
    est = json.loads(r.stdout)
    assert est["images"] == 3 and est["sizes"] == {"512x768": 1, "512x512": 1, "1024x576": 1}
    assert est["estimated_cost_usd"] == 0.0
    assert table_dump(styled / "stage5.db") == before


def test_generate_needs_a_locked_style(project, cli):
    add_assets(project, TRIO)
    r = cli("generate", "--all", "-p", project)
    assert r.exit_code == 3
    assert "no visual style is locked" in one_line_error(r)


def test_bad_usage(styled, cli):
    add_assets(styled, TRIO)
    assert cli("generate", "-p", styled).exit_code == 2
    assert cli("generate", "MARA", "--all", "-p", styled).exit_code == 2
    r = cli("generate", "--all", "--backend", "magic", "-p", styled)
    assert r.exit_code == 2 and "unknown image backend" in one_line_error(r)
    r = cli("generate", "NOBODY", "-p", styled)
    assert r.exit_code == 2 and "no asset named" in one_line_error(r)


def test_locked_asset_refused_and_skipped(styled, cli):
    add_assets(styled, TRIO)
    cli("lock", "MARA", "-p", styled)
    r = cli("generate", "MARA", "-p", styled)
    assert r.exit_code == 3 and "MARA" in one_line_error(r)
    r = cli("generate", "--all", "--json", "-p", styled)
    assert "MARA" not in json.loads(r.stdout)["done"]


def test_description_missing_warns(styled, cli):
    add_assets(styled, [("GHOST", "character", "")])
    r = cli("generate", "GHOST", "-p", styled)
    assert r.exit_code == 0 and "no description" in r.stderr


def test_unwritable_images_folder_fails_job_cleanly(styled, cli):
    add_assets(styled, TRIO[:1])
    (styled / "images").rmdir()
    (styled / "images").write_text("not a folder")  # writing inside it fails, even as root
    r = cli("generate", "MARA", "-p", styled)
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    jobs = _jobs(styled)
    assert jobs and all(j["status"] == "failed" and j["error"] for j in jobs)
    review = json.loads(cli("review", "--json", "-p", styled).stdout)
    assert review[0]["image_key_url"] is None


def test_stuck_running_job_is_recovered(styled, cli):
    add_assets(styled, TRIO[:1])
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute(
        "INSERT INTO image_generation_jobs (asset_id, status, backend, prompt, width, height, pid, created_at)"
        " VALUES (1, 'running', 'placeholder', 'p', 512, 768, 999999999, 'x')")
    conn.commit()
    conn.close()
    r = cli("generate", "--missing", "-p", styled, "--json")
    assert json.loads(r.stdout)["done"] == ["MARA"]
    jobs = _jobs(styled)
    assert jobs[0]["status"] == "failed" and "interrupted" in jobs[0]["error"]


def test_jobs_listing(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "--all", "-p", styled)
    rows = json.loads(cli("jobs", "--json", "-p", styled).stdout)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    assert cli("jobs", "--status", "weird", "-p", styled).exit_code == 2
    assert "done" in cli("jobs", "-p", styled).stdout


@pytest.mark.slow
def test_diffusers_backend_from_the_cli(styled, cli, tiny_model):
    """The real diffusers path end to end through the CLI, on a tiny random-weight pipeline."""
    import torch

    model = tiny_model
    add_assets(styled, TRIO)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = cli("generate", "--all", "--backend", "diffusers", "--model", model, "--steps", "2",
                "--yes", "--json", "-p", styled)
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["done"]) == 3
    sizes = {a["type"]: Image.open(styled / a["image_key_url"]).size
             for a in json.loads(cli("review", "--json", "-p", styled).stdout)}
    assert sizes == {"character": (512, 768), "prop": (512, 512), "location": (1024, 576)}
    jobs = _jobs(styled)
    assert {j["backend"] for j in jobs} == {"diffusers"} and {j["steps"] for j in jobs} == {2}
    meta = read_png_metadata(styled / json.loads(cli("review", "--json", "-p", styled).stdout)[0]["image_key_url"])
    assert "Steps: 2" in meta["parameters"]


def test_paid_or_large_batch_needs_yes_without_a_terminal(styled, cli):
    add_assets(styled, [(f"THING {i}", "prop", "x") for i in range(12)])
    before = table_dump(styled / "stage5.db")
    r = cli("generate", "--all", "--backend", "api", "--model", "openai/dall-e-3",
            "--api-base", "http://127.0.0.1:9/v1", "-p", styled,
            env={"OPENAI_API_KEY": "sk-test-000000000000"})
    assert r.exit_code == 2
    assert "--yes" in one_line_error(r)
    assert table_dump(styled / "stage5.db") == before


def test_retry_failed_picks_only_assets_whose_last_job_failed(styled, cli):
    add_assets(styled, TRIO)
    cli("generate", "--all", "-p", styled)
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute("INSERT INTO image_generation_jobs (asset_id, status, backend, prompt, width, height,"
                 " error, created_at) VALUES (2, 'failed', 'api', 'p', 512, 512, 'HTTP 500', 'x')")
    conn.commit()
    conn.close()
    r = cli("generate", "--retry-failed", "--json", "-p", styled)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["done"] == ["BRASS TELESCOPE"]
    r = cli("generate", "--retry-failed", "--json", "-p", styled)
    assert json.loads(r.stdout)["done"] == []


def test_names_from_scripts_never_become_paths(styled, cli, tmp_path):
    """An asset called '../../outside' still gets images/<id>-<hash>.png, nothing else."""
    add_assets(styled, [("../../outside/evil", "prop", "/etc/passwd ../../x")])
    r = cli("generate", "--all", "--json", "-p", styled)
    assert r.exit_code == 0, r.output
    [a] = json.loads(cli("review", "--json", "-p", styled).stdout)
    assert a["image_key_url"].startswith(f"images/{a['id']}-") and "/" not in a["image_key_url"][7:]
    assert not (tmp_path / "outside").exists() and not (styled.parent / "outside").exists()
    assert {p.name for p in styled.iterdir()} <= {"images", "stage5.db", "stage5.db-shm",
                                                  "stage5.db-wal"}
