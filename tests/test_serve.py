"""`stage5 serve`: every route through Starlette's test client (the same core functions as the
CLI, the same refusal lines), the token, Host and origin checks, path traversal, uploads and
concurrent autosaves."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")

from starlette.testclient import TestClient  # noqa: E402

from stage5cli.serve.app import create_app  # noqa: E402
from tests.conftest import REPO, one_line_error  # noqa: E402

BASE = "http://127.0.0.1:8150"
TOKEN = "test-token-123"
POST = {"X-Stage5-Token": TOKEN, "Origin": BASE}
SCRIPT = REPO / "examples" / "scripts" / "the_last_lamp.fountain"


def client(root: Path) -> TestClient:
    app = create_app(root, token=TOKEN, host="127.0.0.1", port=8150)
    c = TestClient(app, base_url=BASE)
    c.app_state = app.state
    return c


@pytest.fixture
def room(styled, cli):
    """A project with a style and the_last_lamp extracted; a client that has the token."""
    (styled / "the_last_lamp.fountain").write_bytes(SCRIPT.read_bytes())
    r = cli("extract", styled / "the_last_lamp.fountain", "-p", styled)
    assert r.exit_code == 0, r.output
    c = client(styled)
    assert c.get(f"/?token={TOKEN}").status_code == 200  # sets the cookie
    yield styled, c


def db(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "stage5.db")
    conn.row_factory = sqlite3.Row
    return conn


def asset(root: Path, name: str) -> sqlite3.Row:
    with db(root) as conn:
        return conn.execute("SELECT * FROM project_assets WHERE name = ? COLLATE NOCASE",
                            [name]).fetchone()


def last_event(root: Path) -> str:
    with db(root) as conn:
        return conn.execute("SELECT command FROM events ORDER BY id DESC LIMIT 1").fetchone()[0]


def post(c: TestClient, path: str, data: dict | None = None, **kw):
    return c.post(path, content=json.dumps(data or {}), headers={**POST, **kw.pop("headers", {})},
                  **kw)


def run_job(c: TestClient, path: str, data: dict) -> dict:
    r = post(c, path, data)
    assert r.status_code == 200, r.text
    c.app_state.worker.wait()
    state = c.get("/api/progress").json()
    assert state["status"] == "done", state
    return state


# ---- the page --------------------------------------------------------------------------------


def test_without_a_style_only_the_style_cards_are_offered(project):
    c = client(project)
    page = c.get(f"/?token={TOKEN}").text
    assert 'data-action="style-lock" data-style="film-noir"' in page
    assert 'id="assets"' not in page and 'data-action="extract"' not in page
    assert 'id="lock-all" data-action="lock-all" disabled' in page
    # the actions behind it refuse with the CLI's line
    (project / "s.fountain").write_bytes(SCRIPT.read_bytes())
    r = post(c, "/api/extract", {"script": "s.fountain"})
    assert r.status_code == 409 and r.json()["error"].startswith("no visual style is locked")
    assert post(c, "/api/style/lock", {"style_id": "film-noir"}).json()["changed"] is True
    assert last_event(project) == "style lock"
    page = c.get("/").text
    assert "locked" in page and 'data-action="extract"' in page


def test_page_shows_every_asset_grouped_and_escaped(room):
    root, c = room
    evil = '<script>alert(1)</script> & "co"'
    assert post(c, "/api/add", {"name": evil, "type": "prop",
                                "description": '"><img src=x onerror=alert(2)>'}).status_code == 200
    page = c.get("/").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;" in page
    with db(root) as conn:
        n = conn.execute("SELECT count(*) FROM project_assets").fetchone()[0]
    assert page.count('<article class="card"') == n
    for label in ("Characters", "Locations", "Props"):
        assert f">{label} <small>" in page
    assert "512×768" in page and "1024×576" in page  # the size each type is generated at


def test_a_cli_change_shows_on_the_next_refresh(room, cli):
    root, c = room
    row = db(root).execute("SELECT name FROM project_assets WHERE asset_type = 'character'"
                           ).fetchone()
    name = row[0]
    assert cli("edit", name, "-d", "changed from the terminal", "-p", root).exit_code == 0
    assert "changed from the terminal" in c.get("/").text


# ---- the token, the Host header, the origin ----------------------------------------------------


def test_reading_needs_the_token(room):
    root, _ = room
    fresh = client(root)
    for path in ("/", "/api/state", "/images/1", "/api/history"):
        r = fresh.get(path)
        assert r.status_code == 401, path
        assert "token" in r.json()["error"]
    assert fresh.get("/?token=wrong").status_code == 401
    assert fresh.get(f"/?token={TOKEN}").status_code == 200
    assert fresh.get("/api/state").status_code == 200  # the cookie from the printed URL


def test_changes_need_the_token_header_not_only_the_cookie(room):
    root, c = room
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    r = c.post(f"/api/assets/{aid}/lock", headers={"Origin": BASE})  # the cookie is there
    assert r.status_code == 401
    r = c.post(f"/api/assets/{aid}/lock", headers={"Origin": BASE, "X-Stage5-Token": "nope"})
    assert r.status_code == 401
    assert db(root).execute("SELECT locked FROM project_assets WHERE id = ?", [aid]).fetchone()[0] == 0


def test_wrong_host_header_is_refused_everywhere(room):
    _, c = room
    for path in ("/", "/api/state", "/static/review.js", "/images/1"):
        r = c.get(path, headers={"Host": "evil.example:8150"})
        assert r.status_code == 403, path
        assert "Host" in r.json()["error"]
    r = post(c, "/api/undo", headers={"Host": "127.0.0.1:9999"})
    assert r.status_code == 403
    assert c.get("/", headers={"Host": "localhost:8150"}).status_code == 200


def test_cross_origin_and_originless_posts_are_refused(room):
    root, c = room
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:8150.evil"},
                    {"Referer": "http://evil.example/x"}, {}):
        r = c.post(f"/api/assets/{aid}/lock", headers={"X-Stage5-Token": TOKEN, **headers})
        assert r.status_code == 403, headers
    assert db(root).execute("SELECT locked FROM project_assets WHERE id = ?", [aid]).fetchone()[0] == 0
    r = c.post(f"/api/assets/{aid}/lock", headers={"X-Stage5-Token": TOKEN,
                                                   "Referer": BASE + "/"})
    assert r.status_code == 200
    assert last_event(root) == "lock"


def test_get_cannot_change_anything(room):
    _, c = room
    assert c.get("/api/undo").status_code == 405
    assert c.get("/api/lock-all").status_code == 405


# ---- images: by asset id, from images/ only ------------------------------------------------------


def test_images_are_served_by_id_with_caching(room):
    root, c = room
    run_job(c, "/api/generate", {"which": "all", "yes": True})
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    r = c.get(f"/images/{aid}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    etag = r.headers["etag"]
    assert c.get(f"/images/{aid}", headers={"If-None-Match": etag}).status_code == 304
    assert c.get("/images/99999").status_code == 404


def test_no_path_traversal(room, tmp_path):
    root, c = room
    secret = root.parent / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    with db(root) as conn:  # a poisoned image key pointing outside images/
        conn.execute("UPDATE project_assets SET image_key_url = ? WHERE id = ?",
                     ["images/../../secret.png", aid])
    assert c.get(f"/images/{aid}").status_code == 404
    with db(root) as conn:
        conn.execute("UPDATE project_assets SET image_key_url = ? WHERE id = ?",
                     ["stage5.db", aid])
    assert c.get(f"/images/{aid}").status_code == 404
    for path in ("/images/..%2Fstage5.db", "/images/../stage5.db", "/static/../app.py",
                 "/static/..%2F..%2Fstage5.db", "/images/1%2F..%2F..%2Fsecret.png"):
        r = c.get(path)
        assert r.status_code in (401, 404), path
        assert b"secret" not in r.content and b"SQLite" not in r.content
    r = post(c, "/api/extract", {"script": "../secret.png"})
    assert r.status_code == 400 and "no script" in r.json()["error"]
    r = post(c, "/api/extract", {"script": str(SCRIPT)})
    assert r.status_code == 400


# ---- uploads -------------------------------------------------------------------------------------


def test_upload_goes_to_a_stage5_file_and_extracts(room, monkeypatch):
    root, c = room
    r = c.post("/api/upload?name=../../evil name.fountain", content=SCRIPT.read_bytes(),
               headers=POST)
    assert r.status_code == 200, r.text
    rel = r.json()["script"]
    assert rel.startswith("scripts/upload-evil-name-") and rel.endswith(".fountain")
    assert (root / rel).read_bytes() == SCRIPT.read_bytes()
    assert not (root.parent.parent / "evil name.fountain").exists()
    state = run_job(c, "/api/extract", {"script": rel})
    assert state["kind"] == "extract" and state["result"]["counts"]["character"] >= 1
    assert rel in c.get("/").text
    # refusals: extension, empty, size
    assert c.post("/api/upload?name=x.exe", content=b"x", headers=POST).status_code == 400
    assert c.post("/api/upload?name=x.fountain", content=b"  ", headers=POST).status_code == 400
    monkeypatch.setattr("stage5cli.serve.app.MAX_UPLOAD", 100)
    r = c.post("/api/upload?name=big.fountain", content=b"x" * 500, headers=POST)
    assert r.status_code == 413
    assert c.post("/api/upload?name=x.fountain", content=b"INT. A", headers={"Origin": BASE}
                  ).status_code == 401


# ---- every action: the CLI's core function, its history event, its refusal line -----------------


def test_actions_write_the_cli_history_events(room):
    root, c = room
    with db(root) as conn:
        a, b = [r[0] for r in conn.execute(
            "SELECT id FROM project_assets WHERE asset_type = 'prop' ORDER BY id LIMIT 2")]
    assert post(c, f"/api/assets/{a}/description", {"description": "brass, dented"}
                ).json()["changed"] == ["description"]
    assert last_event(root) == "edit"
    assert post(c, "/api/add", {"name": "Red Umbrella", "type": "prop"}).status_code == 200
    assert last_event(root) == "add"
    r = post(c, "/api/merge", {"target": str(a), "sources": [str(b)], "description_from": None})
    assert r.status_code == 200, r.text
    assert last_event(root) == "merge"
    with db(root) as conn:
        assert conn.execute("SELECT count(*) FROM project_assets WHERE id = ?", [b]).fetchone()[0] == 0
    umbrella = asset(root, "Red Umbrella")["id"]
    r = post(c, f"/api/assets/{umbrella}/remove")
    assert r.json()["removed"] == ["Red Umbrella"] and last_event(root) == "remove"
    r = post(c, "/api/undo")
    assert r.json()["undid"] == "remove" and asset(root, "Red Umbrella") is not None
    run_job(c, "/api/generate", {"assets": [a], "yes": True})
    assert last_event(root) == "generate"
    assert post(c, f"/api/assets/{a}/lock").json()["changed"]
    assert last_event(root) == "lock"
    r = post(c, f"/api/assets/{a}/promote")
    assert r.status_code == 200 and r.json()["done"][0]["action"] == "added"
    assert post(c, f"/api/assets/{a}/unlock").json()["changed"]
    assert last_event(root) == "unlock"
    events = c.get("/api/history").json()
    assert [e["command"] for e in events[:4]] == ["unlock", "promote", "lock", "generate"]


def test_refusals_are_the_cli_lines(room, cli):
    root, c = room
    name = db(root).execute("SELECT name FROM project_assets WHERE asset_type = 'character'"
                            ).fetchone()[0]
    for args, path, data in [
        (["add", name, "--type", "character"], "/api/add", {"name": name, "type": "character"}),
        (["add", "X", "--type", "vehicle"], "/api/add", {"name": "X", "type": "vehicle"}),
        (["style", "lock", "no-such-style"], "/api/style/lock", {"style_id": "no-such-style"}),
        (["branch", "switch", "nope"], "/api/branch/switch", {"name": "nope"}),
        (["promote", name], f"/api/assets/{asset(root, name)['id']}/promote", {}),
        (["lock-all"], "/api/lock-all", {}),
    ]:
        line = one_line_error(cli(*args, "-p", root))
        r = post(c, path, data)
        assert 400 <= r.status_code < 500, (path, r.text)
        assert f"error: {r.json()['error']}" == line, path
    assert post(c, "/api/merge", {"target": "1", "sources": []}).status_code == 400
    assert post(c, "/api/assets/99999/lock").status_code == 404
    r = c.post("/api/add", content=b"not json", headers=POST)
    assert r.status_code == 400 and r.json()["error"] == "the request body is not JSON"


def test_conflicts_suggest_apply_resolve(room):
    root, c = room
    with db(root) as conn:
        found = [r[0] for r in conn.execute(
            "SELECT id FROM project_assets WHERE json_extract(metadata, '$.has_conflicts')")]
    assert found, "the bundled script has a conflict"
    aid = found[0]
    s = post(c, f"/api/assets/{aid}/suggest").json()
    assert s["reasoning"] and s["method"]
    page = c.get("/").text
    assert f'<div class="conflict" data-id="{aid}">' in page
    r = post(c, f"/api/assets/{aid}/resolve", {"text": "   "})
    assert r.status_code == 400 and r.json()["error"] == "a resolution needs a non-empty description"
    r = post(c, f"/api/assets/{aid}/resolve", {"text": "a blue coat, always"})
    assert r.status_code == 200 and last_event(root) == "conflicts resolve"
    assert asset(root, r.json()["asset"]["name"])["description"] == "a blue coat, always"
    r = post(c, f"/api/assets/{aid}/apply")
    assert r.status_code == 400  # no conflict left: the CLI's refusal
    post(c, "/api/undo")
    r = post(c, f"/api/assets/{aid}/apply")
    if s["usable"]:
        assert r.status_code == 200 and last_event(root) == "conflicts apply"


def test_the_gate_is_assess_and_lock_all_locks(room):
    from stage5cli.project import open_project
    from stage5cli.readiness import assess

    root, c = room
    run_job(c, "/api/generate", {"which": "all", "yes": True})
    p = open_project(root)
    r = assess(p)
    state = c.get("/api/state").json()
    assert state["can_lock"] is r.can_lock is False
    assert [g["cause"] for g in state["blockers"]] == [g.cause for g in r.blockers] == ["placeholder"]
    page = c.get("/").text
    assert 'id="lock-all" data-action="lock-all" disabled' in page
    from html import escape

    assert escape(r.blockers[0].message) in page and escape(r.blockers[0].fix) in page
    ra = assess(p, allow_placeholder=True)
    state = c.get("/api/state?allow_placeholder=1").json()
    assert state["can_lock"] is ra.can_lock is True
    assert 'data-action="lock-all">' in c.get("/?allow_placeholder=1").text
    conflicts = [g for g in ra.warnings if g.cause == "conflicts"]
    r2 = post(c, "/api/lock-all", {"allow_placeholder": True})
    if conflicts:  # the CLI's "pass --yes": the page's "lock with unresolved conflicts" box
        assert r2.status_code == 400 and "resolve first" in r2.json()["error"]
        r2 = post(c, "/api/lock-all", {"allow_placeholder": True, "accept_conflicts": True})
    assert r2.status_code == 200, r2.text
    assert r2.json()["stage"] == "locked" and last_event(root) == "lock-all"
    # locked: edits are refused with the CLI's line
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    r3 = post(c, f"/api/assets/{aid}/description", {"description": "late"})
    assert r3.status_code == 409 and "stage 5 is locked" in r3.json()["error"]
    assert "stage 5 locked" in c.get("/").text


def test_branch_create_and_switch(room):
    root, c = room
    r = post(c, "/api/branch/create", {"name": "ink", "style": "watercolor-storybook"})
    if r.status_code != 200:  # the style ids are data: take whichever other one exists
        from stage5cli.project import available_styles, open_project

        other = next(s for s in available_styles(open_project(root)) if s != "film-noir")
        r = post(c, "/api/branch/create", {"name": "ink", "style": other})
    assert r.status_code == 200, r.text
    page = c.get("/").text
    assert "branch ink" in page
    assert post(c, "/api/branch/switch", {"name": "main"}).status_code == 200
    assert "branch main" in c.get("/").text


# ---- background work -----------------------------------------------------------------------------


def test_one_job_at_a_time_and_failures_are_one_line(room):
    root, c = room
    worker = c.app_state.worker
    gate, reported = threading.Event(), threading.Event()
    worker.start("generate", lambda p, report: (report(1, 3, "x"), reported.set(), gate.wait(10)))
    assert reported.wait(10)  # the job thread has started and reported (no race with the poll)
    state = c.get("/api/progress").json()
    assert state["status"] == "running" and state["done"] == 1 and state["total"] == 3
    r = post(c, "/api/generate", {"which": "all", "yes": True})
    assert r.status_code == 409 and "still running" in r.json()["error"]
    gate.set()
    worker.wait()

    def boom(p, report):
        from stage5cli.errors import Stage5Error

        raise Stage5Error("the backend is\nunreachable")

    worker.start("generate", boom)
    worker.wait()
    state = c.get("/api/progress").json()
    assert state["status"] == "failed" and state["error"] == "the backend is unreachable"
    assert "the backend is unreachable" in c.get("/").text


# ---- autosave and concurrent saves ---------------------------------------------------------------


def test_two_tabs_the_later_save_wins_and_is_told(room):
    root, c = room
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    seen = c.get("/api/state").json()["updated_at"][str(aid)]  # both tabs loaded this
    a = post(c, f"/api/assets/{aid}/description", {"description": "tab A", "updated_at": seen})
    assert a.json()["overwrote"] is False
    b = post(c, f"/api/assets/{aid}/description", {"description": "tab B", "updated_at": seen})
    assert b.status_code == 200 and b.json()["overwrote"] is True
    assert db(root).execute("SELECT description FROM project_assets WHERE id = ?",
                            [aid]).fetchone()[0] == "tab B"
    # tab A learns it from the state it polls: the stamp moved past what it saved
    assert c.get("/api/state").json()["updated_at"][str(aid)] == b.json()["updated_at"]
    assert b.json()["updated_at"] != a.json()["updated_at"]


def test_simultaneous_saves_are_serialised(room):
    root, c = room
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    results: list = []

    def save(text):
        results.append(post(c, f"/api/assets/{aid}/description", {"description": text}))

    threads = [threading.Thread(target=save, args=(f"text {i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    final = db(root).execute("SELECT description FROM project_assets WHERE id = ?",
                             [aid]).fetchone()[0]
    assert final in {f"text {i}" for i in range(6)}
    with db(root) as conn:
        edits = conn.execute("SELECT count(*) FROM events WHERE command = 'edit'").fetchone()[0]
    assert edits == sum(bool(r.json()["changed"]) for r in results)


# ---- the command ---------------------------------------------------------------------------------


def test_serve_on_every_interface_needs_a_token(styled, cli):
    r = cli("serve", "--host", "0.0.0.0", "--no-open", "-p", styled)
    assert r.exit_code == 2
    assert "--token" in one_line_error(r)


def test_any_host_when_bound_to_every_interface_but_token_still_needed(styled):
    app = create_app(styled, token=TOKEN, host="0.0.0.0", port=8150)
    c = TestClient(app, base_url="http://192.168.1.20:8150")
    assert c.get("/").status_code == 401
    assert c.get(f"/?token={TOKEN}").status_code == 200
    assert c.get("/", headers={"Host": "192.168.1.20:9999"}).status_code == 403


def test_serve_prints_the_url_with_the_token(styled, cli, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    r = cli("serve", "--port", "8199", "--token", "tok-1", "--no-open", "-p", styled)
    assert r.exit_code == 0, r.output
    assert "http://127.0.0.1:8199/?token=tok-1" in r.stdout
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8199
    c = TestClient(seen["app"], base_url="http://127.0.0.1:8199")
    assert c.get("/?token=tok-1").status_code == 200
    r = cli("serve", "--host", "0.0.0.0", "--token", "tok-2", "-p", styled)
    assert r.exit_code == 0 and "reachable" not in r.stdout
    assert "anyone who can reach this machine" in r.stderr


def test_a_failed_image_job_shows_its_error_on_the_card(room):
    root, c = room
    aid = db(root).execute("SELECT id FROM project_assets LIMIT 1").fetchone()[0]
    with db(root) as conn:
        conn.execute(
            "INSERT INTO image_generation_jobs (asset_id, job_type, status, backend, prompt, "
            "width, height, seed, error, created_at) VALUES (?, 'image_key', 'failed', 'api', "
            "'p', 512, 512, 1, ?, '2026-01-01')", [aid, "HTTP 503 <from the image API>"])
    page = c.get("/").text
    assert 'data-state="failed"' in page
    assert "HTTP 503 &lt;from the image API&gt;" in page
