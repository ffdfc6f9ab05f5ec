"""The review room's routes: one page, a JSON API that calls the CLI's core functions, images.

    app = create_app(project_root, token="...", host="127.0.0.1", port=8150)

Safety (every request): the Host header must be the bound host:port (DNS rebinding); the token
(printed URL `?token=`, then a cookie) is needed to read anything; a state-changing request is a
POST with the token in the `X-Stage5-Token` header and an Origin (or Referer) of this very
server. Images are served by asset id from the project's images/ folder only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stage5cli.errors import BlockedError, NotFoundError, Stage5Error, UsageError

STATIC = Path(__file__).parent / "static"
COOKIE = "stage5_token"
MAX_UPLOAD = 10_000_000  # bytes, as `extract --max-size`
SCRIPT_EXT = (".fountain", ".fdx", ".pdf", ".txt", ".spmd")
SCRIPTS_DIR = "scripts"


# ---- the project, one connection per worker thread ------------------------------------------


class Projects:
    """Opens the project once per thread (sqlite connections stay in their thread). Every query
    runs in autocommit, so a change made by the CLI shows on the next request."""

    def __init__(self, root: Path):
        self.root = root
        self._local = threading.local()

    def get(self):
        p = getattr(self._local, "project", None)
        if p is None:
            from stage5cli.project import open_project

            p = self._local.project = open_project(self.root)
        return p


# ---- background work (extract, generate), one at a time ------------------------------------


class Worker:
    def __init__(self, root: Path):
        self.root = root
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"status": "idle"}
        self.thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self.state.get("status") == "running"

    def start(self, kind: str, fn) -> None:
        with self.lock:
            if self.busy():
                raise BlockedError(f"{self.state['kind']} is still running; wait for it to finish")
            self.state = {"status": "running", "kind": kind, "done": 0, "total": 0, "label": "",
                          "error": None, "result": None, "started": time.time()}
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True,
                                       name=f"stage5-serve-{kind}")
        self.thread.start()

    def progress(self, done: int, total: int, label: str = "") -> None:
        self.state.update(done=done, total=total, label=label)

    def _run(self, fn) -> None:
        from stage5cli.project import open_project

        try:
            p = open_project(self.root)
            try:
                result = fn(p, self.progress)
            finally:
                p.db.conn.close()
            self.state.update(status="done", result=result)
        except Stage5Error as e:
            self.state.update(status="failed", error=" ".join(str(e).split()))
        except Exception as e:  # noqa: BLE001 - shown in the page as one line
            from stage5cli.errors import describe_unexpected

            self.state.update(status="failed", error=describe_unexpected(e))

    def wait(self, timeout: float = 60) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


# ---- helpers --------------------------------------------------------------------------------


def _err(e: Stage5Error) -> JSONResponse:
    code = 404 if isinstance(e, NotFoundError) else 409 if isinstance(e, BlockedError) else 400
    return JSONResponse({"error": " ".join(str(e).split())}, status_code=code)


def _refuse(message: str, code: int = 403) -> Response:
    return JSONResponse({"error": message}, status_code=code)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 1_000_000:
        raise UsageError("request too large")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise UsageError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object")
    return data


def _str(data: dict, key: str, default: str | None = None) -> str | None:
    v = data.get(key, default)
    if v is not None and not isinstance(v, str):
        raise UsageError(f"{key} must be text")
    return v


def _ids(data: dict, key: str = "assets") -> list[str]:
    v = data.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, int | str) for x in v):
        raise UsageError(f"{key} must be a list of asset ids")
    return [str(x) for x in v]


def script_files(root: Path) -> list[str]:
    """Scripts the page may extract: in the project folder and its scripts/ folder (names only,
    relative; the page picks one of these, never a path of its own)."""
    out = []
    for folder in (root, root / SCRIPTS_DIR):
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file() and f.suffix.lower() in SCRIPT_EXT:
                    out.append(f.relative_to(root).as_posix())
    return out


def image_path(project, asset_id: int) -> Path | None:
    """The asset's image key file, only when it lies inside the project's images/ folder."""
    found = project.db.execute(
        "SELECT image_key_url FROM project_assets WHERE id = ? AND branch_id = ?",
        [asset_id, project.branch_id]).fetchone()
    if not found or not found[0]:
        return None
    images = project.images_dir.resolve()
    path = (project.root / found[0]).resolve()
    if not path.is_relative_to(images) or not path.is_file():
        return None
    return path


def host_names(host: str, port: int, allowed: list[str] | None = None) -> set[str]:
    """The Host headers this server answers to: the bound host:port (and its loopback
    spellings). Bound to every interface ("0.0.0.0"), any host name on that port (the token is
    then what protects the page)."""
    if allowed:
        return set(allowed)
    if host in ("0.0.0.0", "::"):
        return {"*"}
    names = {f"{host}:{port}"}
    if host in ("127.0.0.1", "localhost"):
        names |= {f"127.0.0.1:{port}", f"localhost:{port}"}
    if host == "::1":
        names = {f"[::1]:{port}"}
    return names


def host_ok(hosts: set[str], header: str, port: int) -> bool:
    if "*" in hosts:
        return header.rsplit(":", 1)[-1] == str(port) and ":" in header
    return header in hosts


# ---- the app --------------------------------------------------------------------------------


def create_app(root: Path, *, token: str, host: str = "127.0.0.1", port: int = 8150,
               allowed_hosts: list[str] | None = None) -> Starlette:
    root = Path(root)
    projects = Projects(root)
    worker = Worker(root)
    hosts = host_names(host, port, allowed_hosts)

    def authorised(request: Request, *, post: bool) -> Response | None:
        here = request.headers.get("host", "")
        if not host_ok(hosts, here, port):
            return _refuse("wrong Host header: this server answers only to "
                           + ", ".join(sorted(hosts)))
        origins = {f"http://{here}"}  # same origin: the very host:port this request came to
        given = (request.headers.get("x-stage5-token") if post else
                 request.query_params.get("token") or request.cookies.get(COOKIE)
                 or request.headers.get("x-stage5-token")) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _refuse("missing or wrong token: open the URL that stage5 serve printed", 401)
        if post:
            origin = request.headers.get("origin")
            referer = request.headers.get("referer")
            if origin is not None:
                if origin not in origins:
                    return _refuse("cross-origin request refused")
            elif referer is not None:
                if not any(referer == o or referer.startswith(o + "/") for o in origins):
                    return _refuse("cross-origin request refused")
            else:
                return _refuse("a state-changing request needs an Origin or Referer header")
        return None

    def action(fn, *, post: bool = True):
        """A route: checks, then `fn(request, project, data)` -> JSON; Stage5Error -> 4xx."""

        async def endpoint(request: Request) -> Response:
            refused = authorised(request, post=post)
            if refused is not None:
                return refused
            try:
                data = await _body(request) if post else {}
                from starlette.concurrency import run_in_threadpool

                out = await run_in_threadpool(lambda: fn(request, projects.get(), data))
            except Stage5Error as e:
                return _err(e)
            except Exception as e:  # noqa: BLE001 - one line, never a stack trace
                from stage5cli.errors import describe_unexpected

                return JSONResponse({"error": describe_unexpected(e)}, status_code=500)
            if isinstance(out, Response):
                return out
            return JSONResponse(out)

        return endpoint

    # ---- reads ----------------------------------------------------------------------------

    def page(request, p, _):
        from stage5cli.serve.page import render

        allow = request.query_params.get("allow_placeholder") == "1"
        html = render(p, token=token, allow_placeholder=allow, scripts=script_files(root),
                      job=worker.state)
        resp = HTMLResponse(html, headers={"Cache-Control": "no-store",
                                           "Content-Security-Policy": CSP,
                                           "X-Frame-Options": "DENY",
                                           "Referrer-Policy": "same-origin"})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    def state(request, p, _):
        from stage5cli.readiness import assess

        allow = request.query_params.get("allow_placeholder") == "1"
        r = assess(p, allow_placeholder=allow)
        stamps = {str(row["id"]): row["updated_at"] for row in p.db.query(
            "SELECT id, updated_at FROM project_assets WHERE branch_id = ?", [p.branch_id])}
        return {"can_lock": r.can_lock, "stage": r.stage_status, "branch": r.branch,
                "style": r.style_id, "blockers": [g.model_dump() for g in r.blockers],
                "warnings": [g.model_dump() for g in r.warnings], "updated_at": stamps,
                "job": worker.state}

    def progress(request, p, _):
        return worker.state

    def history_list(request, p, _):
        from stage5cli.history import list_events

        return [e.model_dump(mode="json") for e in list_events(p, limit=50)]

    def mentions(request, p, _):
        from stage5cli import curation

        d = curation.show(p, str(request.path_params["asset_id"]))
        return {"name": d.name, "mentions": [m.model_dump() for m in d.mentions],
                "jobs": [{"status": j.status, "error": j.error} for j in d.jobs[-3:]]}

    async def image(request: Request) -> Response:
        refused = authorised(request, post=False)
        if refused is not None:
            return refused
        from starlette.concurrency import run_in_threadpool

        path = await run_in_threadpool(lambda: image_path(projects.get(),
                                                          request.path_params["asset_id"]))
        if path is None:
            return _refuse("no image", 404)
        st = path.stat()
        etag = '"' + hashlib.sha256(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode()
                                    ).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return FileResponse(path, headers={"ETag": etag, "Cache-Control": "private, max-age=0, "
                                           "must-revalidate"})

    # ---- style and branches ---------------------------------------------------------------

    def style_lock(request, p, data):
        from stage5cli.project import lock_style

        row, changed = lock_style(p, _str(data, "style_id") or "")
        return {"ok": True, "style": row["style_id"], "changed": changed}

    def branch_create(request, p, data):
        from stage5cli.project import create_branch

        b = create_branch(p, _str(data, "name") or "", _str(data, "style") or None, switch=True)
        return {"ok": True, "branch": b["name"]}

    def branch_switch(request, p, data):
        from stage5cli.project import switch_branch

        b = switch_branch(p, _str(data, "name") or "")
        return {"ok": True, "branch": b["name"]}

    # ---- extraction -----------------------------------------------------------------------

    async def upload(request: Request) -> Response:
        refused = authorised(request, post=True)
        if refused is not None:
            return refused
        name = request.query_params.get("name", "script.fountain")
        ext = Path(name).suffix.lower()
        if ext not in SCRIPT_EXT:
            return _refuse(f"cannot upload {ext or 'a file without extension'}: use one of "
                           + ", ".join(SCRIPT_EXT), 400)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD:
                return _refuse(f"the upload is larger than {MAX_UPLOAD} bytes", 413)
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data.strip():
            return _refuse("the upload is empty", 400)
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem)[:40].strip("-") or "script"
        digest = hashlib.sha256(data).hexdigest()[:10]
        folder = root / SCRIPTS_DIR
        folder.mkdir(exist_ok=True)
        target = folder / f"upload-{stem}-{digest}{ext}"  # stage5's own file, named by content
        if not target.exists():
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        return JSONResponse({"ok": True, "script": target.relative_to(root).as_posix()})

    def extract(request, p, data):
        from stage5cli.extract.base import LLMOptions
        from stage5cli.extract.registry import resolve_model
        from stage5cli.extract.service import run

        script = _str(data, "script") or ""
        if script not in script_files(root):
            raise UsageError(f"no script {script!r} in the project folder: pick one of the list "
                             "or upload one")
        p.require_style()
        model = _str(data, "model") or None
        opts = LLMOptions(model=resolve_model(model), api_base=_str(data, "api_base") or None)

        def job(proj, report):
            out = run(proj, root / script, opts,
                      progress=lambda name, done, total: report(done, total, name))
            return {"counts": out.counts, "extractor": out.extractor,
                    "failures": out.failures[:5]}

        worker.start("extract", job)
        return {"ok": True, "started": "extract"}

    # ---- generation -----------------------------------------------------------------------

    def generate(request, p, data):
        from stage5cli import jobs
        from stage5cli.images import get_backend

        p.require_style()
        p.require_draft("generate images")
        backend = _str(data, "backend", "placeholder") or "placeholder"
        which = _str(data, "which", "") or ""
        refs = _ids(data)
        be = get_backend(backend, model=_str(data, "model") or None)
        be.check()
        jobs.recover_stuck(p)
        sel = jobs.select(p, refs, all_=which == "all", missing=which == "missing",
                          retry_failed=which == "retry-failed", stale=which == "stale")
        plan = jobs.build_requests(p, sel.rows, backend=be, steps=None, seed=None)
        if not plan.requests:
            return {"ok": True, "started": None, "message": "nothing to generate",
                    "warnings": sel.warnings}
        est = jobs.estimate(plan)
        if jobs.needs_confirmation(plan, est) and not data.get("yes"):
            cost = est["estimated_cost_usd"]
            raise UsageError(f"generate {est['images']} image(s) with {est['backend']} "
                             f"(estimated {'unknown cost' if cost is None else f'${cost:.2f}'})?"
                             " confirm to go ahead")

        def job(proj, report):
            # the plan was built on this request's connection; run it on the worker's
            out = jobs.run(proj, plan, progress=lambda done, total, name: report(done, total,
                                                                                 name))
            return {"done": len(out["done"]), "failed": out["failed"][:10]}

        worker.start("generate", job)
        return {"ok": True, "started": "generate", "images": len(plan.requests)}

    # ---- curation -------------------------------------------------------------------------

    def save_description(request, p, data):
        """Autosave: curation.edit in one transaction with the check of `updated_at`. The later
        save wins; when the asset changed since this tab read it, the answer says so."""
        from stage5cli import curation
        from stage5cli.db import atomic

        text = _str(data, "description")
        if text is None:
            raise UsageError("description is missing")
        seen = _str(data, "updated_at")
        aid = request.path_params["asset_id"]
        with atomic(p.db):
            row = p.db.execute("SELECT updated_at FROM project_assets WHERE id = ? AND "
                               "branch_id = ?", [aid, p.branch_id]).fetchone()
            if row is None:
                raise NotFoundError(f"no asset with id {aid} on this branch")
            overwrote = seen is not None and seen != row[0]
            view, changed = curation.edit(p, str(aid), description=text)
            now_at = p.db.execute("SELECT updated_at FROM project_assets WHERE id = ?",
                                  [aid]).fetchone()[0]
        return {"ok": True, "changed": changed, "updated_at": now_at, "overwrote": overwrote}

    def lock_one(request, p, data):
        from stage5cli.locking import set_locked

        return {"ok": True, "changed": set_locked(p, [str(request.path_params["asset_id"])],
                                                  True)}

    def unlock_one(request, p, data):
        from stage5cli.locking import set_locked

        return {"ok": True, "changed": set_locked(p, [str(request.path_params["asset_id"])],
                                                  False)}

    def promote(request, p, data):
        from stage5cli import library

        done = library.promote(p, [str(request.path_params["asset_id"])],
                               overwrite=bool(data.get("overwrite")))
        return {"ok": True, "done": done}

    def remove(request, p, data):
        from stage5cli import curation

        refs = _ids(data) or [str(request.path_params.get("asset_id", ""))]
        for r in refs:
            curation.require_editable(p, r, "remove")
        names, files = curation.remove(p, refs)
        return {"ok": True, "removed": names, "trashed": files}

    def merge(request, p, data):
        from stage5cli import curation

        p.require_draft("merge assets")
        target = _str(data, "target")
        sources = [s for s in _ids(data, "sources") if s != target]
        if not target or not sources:
            raise UsageError("choose a target and at least one other asset to merge")
        view = curation.merge(p, target, sources,
                              description_from=_str(data, "description_from") or None,
                              force=bool(data.get("force")))
        return {"ok": True, "asset": view.model_dump(mode="json")}

    def add(request, p, data):
        from stage5cli import curation

        view = curation.add(p, _str(data, "name") or "", _str(data, "type") or "",
                            description=_str(data, "description") or "")
        return {"ok": True, "asset": view.model_dump(mode="json")}

    # ---- conflicts ------------------------------------------------------------------------

    def suggest(request, p, data):
        from stage5cli import conflicts

        s = conflicts.suggest(p, str(request.path_params["asset_id"]),
                              model=_str(data, "model") or None)
        return {**s.model_dump(mode="json"), "usable": s.usable}

    def apply(request, p, data):
        from stage5cli import conflicts

        s, view = conflicts.apply_suggestion(p, str(request.path_params["asset_id"]),
                                             model=_str(data, "model") or None)
        return {"ok": True, "suggestion": s.model_dump(mode="json")}

    def resolve(request, p, data):
        from stage5cli import conflicts

        view = conflicts.resolve_conflict(p, str(request.path_params["asset_id"]),
                                          _str(data, "text") or "")
        return {"ok": True, "asset": view.model_dump(mode="json")}

    # ---- history and the gate -------------------------------------------------------------

    def undo(request, p, data):
        from stage5cli import history

        ev = history.peek(p)
        if not ev.undoable:
            raise BlockedError(f"cannot undo {ev.command} (event {ev.id}): {ev.why_not}")
        done, notes = history.undo(p)
        return {"ok": True, "undid": done.command, "summary": done.summary, "notes": notes}

    def lock_all(request, p, data):
        from stage5cli.locking import lock_all as gate

        out = gate(p, strict=bool(data.get("strict")),
                   allow_placeholder=bool(data.get("allow_placeholder")),
                   accept_conflicts=bool(data.get("accept_conflicts")))
        return {"ok": True, **out}

    aid = "/api/assets/{asset_id:int}"
    routes = [
        Route("/", action(page, post=False)),
        Route("/api/state", action(state, post=False)),
        Route("/api/progress", action(progress, post=False)),
        Route("/api/history", action(history_list, post=False)),
        Route(aid + "/mentions", action(mentions, post=False)),
        Route("/images/{asset_id:int}", image),
        Route("/api/style/lock", action(style_lock), methods=["POST"]),
        Route("/api/branch/create", action(branch_create), methods=["POST"]),
        Route("/api/branch/switch", action(branch_switch), methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/extract", action(extract), methods=["POST"]),
        Route("/api/generate", action(generate), methods=["POST"]),
        Route(aid + "/description", action(save_description), methods=["POST"]),
        Route(aid + "/lock", action(lock_one), methods=["POST"]),
        Route(aid + "/unlock", action(unlock_one), methods=["POST"]),
        Route(aid + "/promote", action(promote), methods=["POST"]),
        Route(aid + "/remove", action(remove), methods=["POST"]),
        Route(aid + "/suggest", action(suggest), methods=["POST"]),
        Route(aid + "/apply", action(apply), methods=["POST"]),
        Route(aid + "/resolve", action(resolve), methods=["POST"]),
        Route("/api/remove", action(remove), methods=["POST"]),
        Route("/api/merge", action(merge), methods=["POST"]),
        Route("/api/add", action(add), methods=["POST"]),
        Route("/api/undo", action(undo), methods=["POST"]),
        Route("/api/lock-all", action(lock_all), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    from starlette.middleware import Middleware

    app = Starlette(routes=routes, middleware=[Middleware(HostGuard, hosts=hosts, port=port)])
    app.state.worker = worker
    app.state.hosts = hosts
    return app


class HostGuard:
    """Every request, static files included, answers only to the bound host (DNS rebinding)."""

    def __init__(self, app, hosts: set[str], port: int):
        self.app = app
        self.hosts = hosts
        self.port = port

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not host_ok(self.hosts, host, self.port):
                await _refuse("wrong Host header: this server answers only to "
                              + ", ".join(sorted(self.hosts)))(scope, receive, send)
                return
        await self.app(scope, receive, send)


CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
