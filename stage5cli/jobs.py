"""Image generation jobs: choose assets, compose prompts, record every image as a job row.

Each image is one row in image_generation_jobs (pending -> running -> done/failed). Files are
written under a temp name and renamed; a job row is marked done in the same transaction that
points the asset at its new image, so a kill at any moment leaves either the old state or the
new one. Rows left `running` by a process that no longer exists are failed on the next run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import files, store
from .db import atomic, dumps, loads, now
from .errors import Stage5Error, UsageError
from .project import Project
from .provenance import recipe_sha256, source_sha256
from .styles import StyleCapsule

CONFIRM_COUNT = 10  # ask before more images than this on a non-placeholder backend
CONFIRM_COST = 0.50  # ... or before spending more than this (USD)


@dataclass
class Selection:
    rows: list[dict[str, Any]]
    skipped_locked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def recover_stuck(project: Project) -> int:
    """Fail `running` rows whose process is gone (a kill -9) and delete the temp files such a
    process left; returns how many rows."""
    from .files import require_inside
    from .images.png import remove_stale_temp_files

    remove_stale_temp_files(require_inside(project.root, project.images_dir, "images/"))
    stuck = list(project.db.query(
        "SELECT id, pid FROM image_generation_jobs WHERE status IN ('running', 'pending')"))
    dead = [r["id"] for r in stuck if not owner_alive(r["pid"])]
    if dead:
        marks = ",".join("?" * len(dead))
        with atomic(project.db):
            project.db.execute(
                f"UPDATE image_generation_jobs SET status = 'failed', error = 'interrupted: the "
                f"generating process ended before this image was finished', finished_at = ? "
                f"WHERE id IN ({marks})", [now(), *dead])
    return len(dead)


def owner_alive(pid: int | None) -> bool:
    """Is the process that owns a job row still running? (Our own pid: a leftover of an earlier
    run in this same process, since one process generates one batch at a time.)"""
    from .files import pid_alive

    return bool(pid) and pid != os.getpid() and pid_alive(pid)


def select(project: Project, refs: list[str], *, all_: bool, missing: bool,
           retry_failed: bool, stale: bool = False) -> Selection:
    """Which assets to generate. `missing`: every asset without a current image key in the
    locked style (no image, a missing file, a failed job, an off-style or stale image: what
    lock-all counts as missing); `stale`: only stale and off-style images; `retry_failed`:
    assets whose last job failed (even if an older image is still their key). States come from
    readiness.assess."""
    modes = sum([bool(refs), all_, missing, retry_failed, stale])
    if modes == 0:
        raise UsageError("name assets to generate, or use --all, --missing, --stale or "
                         "--retry-failed")
    if modes > 1:
        raise UsageError("use only one of: asset names, --all, --missing, --stale, --retry-failed")
    sel = Selection(rows=[])
    if refs:
        seen = set()
        for ref in refs:
            row = store.resolve(project, ref)
            store.require_unlocked(row, "regenerate")
            if row["id"] not in seen:
                seen.add(row["id"])
                sel.rows.append(row)
    else:
        from .readiness import assess, failed_last

        states = assess(project).by_id()
        failed_ids = failed_last(project) if retry_failed else set()
        wanted = (None if all_ or retry_failed else {"stale", "off-style"} if stale
                  else {"missing", "failed", "stale", "off-style"})
        for row in store.rows(project):
            if retry_failed and row["id"] not in failed_ids:
                continue
            if wanted is not None and states[row["id"]].image_state not in wanted:
                continue
            if row["locked"]:
                sel.skipped_locked.append(row["name"])
                continue
            sel.rows.append(row)
    for row in sel.rows:
        if not (row["description"] or "").strip():
            sel.warnings.append(f"{row['name']} has no description: generating from its name and type")
    return sel


@dataclass
class Plan:
    backend: Any
    requests: list[Any]
    style_row: dict
    capsule: StyleCapsule


def build_requests(project: Project, rows: list[dict], *, backend: Any, steps: int | None,
                   seed: int | None) -> Plan:
    """One request per asset, its prompt composed to fit the backend's text budget (a style
    whose own terms do not fit is refused here, before any job row: PromptTooLong, exit 2)."""
    from .images.base import ImageRequest, size_for
    from .prompting import compose

    style_row, capsule = project.require_style()
    budget = backend.text_budget() if rows else None
    reqs = []
    for row in rows:
        width, height = size_for(row["asset_type"])
        composed = compose(capsule, name=row["name"], asset_type=row["asset_type"],
                           description=row["description"] or "", budget=budget)
        reqs.append(ImageRequest(
            key=str(row["id"]), asset_id=row["id"], asset_name=row["name"],
            asset_type=row["asset_type"], description=row["description"] or "",
            prompt=composed.text,
            negative_prompt=capsule.negative_prompt, width=width, height=height,
            seed=capsule.defaults.seed if seed is None else seed,
            steps=capsule.defaults.steps if steps is None else steps,
            guidance=capsule.defaults.guidance, sampler=capsule.defaults.sampler,
            palette=list(capsule.palette), style_id=capsule.id, style_name=capsule.name,
            style_sha256=style_row["sha256"], prompt_info=composed.record(),
        ))
        # what the image is made from: the asset as it is now (for staleness)
        reqs[-1].prompt_info["source_sha256"] = source_sha256(
            name=row["name"], asset_type=row["asset_type"], description=row["description"] or "",
            style_sha256=style_row["sha256"])
    return Plan(backend=backend, requests=reqs, style_row=style_row, capsule=capsule)


def estimate(plan: Plan) -> dict[str, Any]:
    sizes: dict[str, int] = {}
    total: float | None = 0.0
    for r in plan.requests:
        key = f"{r.width}x{r.height}"
        sizes[key] = sizes.get(key, 0) + 1
        c = plan.backend.estimate_cost(r)
        total = None if (c is None or total is None) else total + c
    return {"backend": plan.backend.backend_id, "model": plan.backend.model_name(),
            "images": len(plan.requests), "sizes": sizes, "estimated_cost_usd": total,
            "prompt_budget": prompt_summary(plan)}


def prompt_summary(plan: Plan) -> dict[str, Any] | None:
    """How the prompts of a plan fit: the encoder, its limit, the largest prompt, how many
    prompts left something out."""
    if not plan.requests:
        return None
    info = [r.prompt_info for r in plan.requests]
    counts = [i.get("count") for i in info if i.get("count") is not None]
    return {"encoder": info[0].get("encoder"), "unit": info[0].get("unit"),
            "limit": info[0].get("limit"), "long_prompt": info[0].get("long_prompt"),
            "largest": max(counts) if counts else None,
            "with_dropped": sum(1 for i in info if i.get("dropped"))}


def needs_confirmation(plan: Plan, est: dict[str, Any]) -> bool:
    if plan.backend.backend_id == "placeholder":
        return False
    cost = est["estimated_cost_usd"]
    return est["images"] > CONFIRM_COUNT or (cost is not None and cost > CONFIRM_COST)


def _prompt_meta(req: Any) -> dict[str, Any]:
    """The prompt record of a request for the job row and the PNG: the exact text sent, its
    size, the encoder's limit and what was left out (see prompting.ComposedPrompt.record)."""
    info = {k: v for k, v in (req.prompt_info or {}).items() if k != "source_sha256"}
    info["prompt_sent"] = req.prompt
    return info


def _file_name(req: Any, backend_id: str, model: str) -> str:
    h = hashlib.sha256(dumps([req.prompt, req.negative_prompt, req.seed, req.steps, req.width,
                              req.height, backend_id, model, req.style_sha256]).encode())
    return f"{req.asset_id}-{h.hexdigest()[:10]}.png"


def run(project: Project, plan: Plan, *, command: str = "generate",
        progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Generate every request of the plan; failures are isolated and reported."""
    from .images.png import a1111_parameters, write_png

    project.require_draft("generate images")
    started = store.started_on(project)  # images are saved only while this is still so
    backend = plan.backend
    model = backend.model_name()
    ids = [r.asset_id for r in plan.requests]
    with atomic(project.db):  # the job rows and the event in one transaction
        before = store.snapshot(project, ids)
        job_ids: dict[str, int] = {}
        for r in plan.requests:
            job_ids[r.key] = project.db["image_generation_jobs"].insert({
                "asset_id": r.asset_id, "job_type": "image_key", "status": "pending",
                "backend": backend.backend_id, "model": model, "prompt": r.prompt,
                "negative_prompt": r.negative_prompt, "width": r.width, "height": r.height,
                "seed": r.seed, "steps": r.steps, "guidance": r.guidance,
                "style_capsule_id": plan.style_row["id"], "style_sha256": r.style_sha256,
                "metadata": dumps({"sampler": r.sampler, "prompt": _prompt_meta(r)}),
                "pid": os.getpid(),
                "created_at": now(),
            }).last_pk
        project.record_event(command, {
            "summary": {"images": len(plan.requests), "backend": backend.backend_id},
            "before": before, "touched": ids, "pid": os.getpid(),
        })
    done: list[str] = []
    failed: list[dict[str, str]] = []
    cost_total: float | None = 0.0
    by_key = {r.key: r for r in plan.requests}
    names = {r.key: r.asset_name for r in plan.requests}

    def mark_running(key: str) -> None:
        with atomic(project.db):
            project.db.execute(
                "UPDATE image_generation_jobs SET status = 'running', started_at = ? WHERE id = ?",
                [now(), job_ids[key]])

    try:
        try:
            project.images_dir.mkdir(parents=True, exist_ok=True)
            files.require_inside(project.root, project.images_dir, "images/")
        except OSError as e:
            raise Stage5Error(f"cannot write images to {project.images_dir}: {e.strerror or e}") from None
        backend.check()
        if plan.requests:
            mark_running(plan.requests[0].key)
        for i, result in enumerate(backend.generate(plan.requests)):
            req = by_key[result.key]
            if result.ok:
                try:
                    fname = _file_name(req, backend.backend_id, model)
                    rel = f"images/{fname}"
                    recipe = recipe_sha256(
                        prompt=req.prompt, negative_prompt=req.negative_prompt,
                        style_sha256=req.style_sha256, backend=backend.backend_id, model=model,
                        width=req.width, height=req.height, seed=req.seed, steps=req.steps)
                    meta = {"asset_id": req.asset_id, "asset_name": req.asset_name,
                            "asset_type": req.asset_type, "style_id": req.style_id,
                            "style_sha256": req.style_sha256, "backend": backend.backend_id,
                            "model": model, "project": project.uid,
                            "recipe_sha256": recipe, "prompt": _prompt_meta(req)}
                    sha = write_png(result.image, project.root / rel,
                                    parameters=a1111_parameters(req, model), stage5=meta)
                except Stage5Error as e:
                    result.error = str(e)
                else:
                    info = {**result.info, "sha256": sha}
                    with atomic(project.db):
                        try:
                            store.check_started_on(project, started, "generate")
                        except store.MovedOn:
                            (project.root / rel).unlink(missing_ok=True)  # ours, just written
                            raise
                        project.db.execute(
                            "UPDATE image_generation_jobs SET status = 'done', image_path = ?, "
                            "cost_usd = ?, metadata = ?, finished_at = ?, "
                            "started_at = coalesce(started_at, ?) WHERE id = ?",
                            [rel, result.cost_usd, dumps({"sampler": req.sampler, **info,
                                                          "prompt": _prompt_meta(req),
                                                          "recipe_sha256": recipe}), now(),
                             now(), job_ids[req.key]])
                        project.db.execute(
                            "UPDATE project_assets SET image_key_url = ?, image_prompt = ?, "
                            "visual_style_capsule_id = ?, image_backend = ?, "
                            "image_recipe_sha256 = ?, image_source_sha256 = ?, updated_at = ? "
                            "WHERE id = ?",
                            [rel, req.prompt, plan.style_row["id"], backend.backend_id, recipe,
                             req.prompt_info.get("source_sha256"), now(), req.asset_id])
                    done.append(req.asset_name)
                    if result.cost_usd is None:
                        cost_total = None
                    elif cost_total is not None:
                        cost_total += result.cost_usd
            if not result.ok:
                with atomic(project.db):
                    project.db.execute(
                        "UPDATE image_generation_jobs SET status = 'failed', error = ?, "
                        "finished_at = ? WHERE id = ?", [result.error, now(), job_ids[req.key]])
                failed.append({"asset": req.asset_name, "error": result.error or "unknown"})
            if progress:
                progress(i + 1, len(plan.requests), names[req.key])
            if i + 1 < len(plan.requests):
                mark_running(plan.requests[i + 1].key)
    except BaseException as e:
        # The backend could not run at all (or we were interrupted): fail what is left.
        from .images.base import one_line

        left = [k for k in job_ids if by_key[k].asset_name not in done
                and all(f["asset"] != by_key[k].asset_name for f in failed)]
        if left:
            reason = "interrupted" if isinstance(e, KeyboardInterrupt) else one_line(e)
            marks = ",".join("?" * len(left))
            with atomic(project.db):
                project.db.execute(
                    f"UPDATE image_generation_jobs SET status = 'failed', error = ?, finished_at = ?"
                    f" WHERE id IN ({marks})", [reason, now(), *[job_ids[k] for k in left]])
        raise
    return {"done": done, "failed": failed, "cost_usd": cost_total, "backend": backend.backend_id,
            "model": model}


def list_jobs(project: Project, *, status: str | None = None, limit: int = 50) -> list[dict]:
    sql = ("SELECT j.*, a.name AS asset_name FROM image_generation_jobs j LEFT JOIN project_assets a "
           "ON a.id = j.asset_id WHERE a.branch_id = ?")
    args: list[Any] = [project.branch_id]
    if status:
        sql += " AND j.status = ?"
        args.append(status)
    sql += " ORDER BY j.id DESC LIMIT ?"
    args.append(limit)
    out = []
    for r in project.db.query(sql, args):
        r["metadata"] = loads(r["metadata"], {})
        r.pop("pid", None)
        out.append(r)
    return out
