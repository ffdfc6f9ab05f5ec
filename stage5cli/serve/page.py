"""The review page, rendered on the server (every value escaped with html.escape).

The order is the plan's: style, extract, assets by type, conflicts, history, and the gatekeeper
bar, which is `readiness.assess` as it is (no rule of its own).
"""

from __future__ import annotations

from html import escape
from typing import Any

TYPES = (("character", "Characters"), ("location", "Locations"), ("prop", "Props"))


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def render(project, *, token: str, allow_placeholder: bool, scripts: list[str],
           job: dict[str, Any]) -> str:
    from stage5cli import store
    from stage5cli.images.base import SIZES
    from stage5cli.project import available_styles
    from stage5cli.readiness import assess

    r = assess(project, allow_placeholder=allow_placeholder)
    style = project.locked_style()
    branch = project.branch()
    stage_locked = r.stage_status == "locked"
    parts: list[str] = []
    add = parts.append
    add('<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="stage5-token" content="{e(token)}">'
        f'<meta name="stage5-allow-placeholder" content="{int(allow_placeholder)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>stage5 review · {e(project.root.name)}</title>'
        '<link rel="stylesheet" href="/static/review.css"></head><body>')
    add(f'<header><h1>stage5 review <small>{e(project.root.name)}</small></h1>'
        f'<span class="badge">branch {e(branch["name"])}</span>'
        + (f'<span class="badge locked" id="style-badge">style {e(style[1].name)} · locked</span>'
           if style else '<span class="badge warn" id="style-badge">no style locked</span>')
        + ('<span class="badge locked">stage 5 locked</span>' if stage_locked else "")
        + '</header><div id="message" role="alert" hidden></div><main>')

    # (a) style
    add('<section id="style"><h2>1 · Style</h2>')
    if style is None:
        add('<p>Lock a visual style first: nothing else is enabled until one is locked.</p>'
            '<div class="styles">')
        for capsule, origin in available_styles(project).values():
            swatches = "".join(f'<span class="swatch" title="{e(c)}" data-colour="{e(c)}"></span>'
                               for c in capsule.palette)
            add(f'<div class="style-card"><h3>{e(capsule.name)}</h3>'
                f'<p>{e(capsule.description)}</p><div class="palette">{swatches}</div>'
                f'<p class="prompt">{e(capsule.prompt.replace("{subject}", "a lighthouse keeper"))}'
                f'</p><p class="muted">{e(capsule.id)} · {e(origin)}</p>'
                f'<button data-action="style-lock" data-style="{e(capsule.id)}">'
                f'Lock {e(capsule.name)}</button></div>')
        add('</div></section>')
        add(_gate(r, allow_placeholder))
        add('</main><script src="/static/review.js"></script></body></html>')
        return "".join(parts)
    branches = list(project.db.query("SELECT name FROM branches ORDER BY id"))
    options = "".join(f'<option{" selected" if b["name"] == branch["name"] else ""}>'
                      f'{e(b["name"])}</option>' for b in branches)
    style_opts = "".join(f'<option value="{e(c.id)}">{e(c.name)}</option>'
                         for c, _ in available_styles(project).values())
    add(f'<p><span class="badge locked">locked</span> {e(style[1].name)} '
        f'<span class="muted">sha256 {e(style[0]["sha256"][:12])}</span></p>'
        '<details><summary>Change by branch</summary><div class="row">'
        '<input id="branch-name" placeholder="new branch name">'
        f'<select id="branch-style">{style_opts}</select>'
        '<button data-action="branch-create">Create branch with this style</button></div>'
        f'<div class="row"><select id="branch-switch">{options}</select>'
        '<button data-action="branch-switch">Switch branch</button></div></details></section>')

    # (b) extract
    script_opts = "".join(f'<option>{e(s)}</option>' for s in scripts)
    add('<section id="extract"><h2>2 · Extract</h2><div class="row">'
        f'<select id="script">{script_opts}</select>'
        '<input type="file" id="upload" accept=".fountain,.fdx,.pdf,.txt,.spmd">'
        '<input id="model" placeholder="model (empty: built-in offline extractor)">'
        f'<button data-action="extract"{" disabled" if stage_locked else ""}>Extract</button>'
        '</div><div id="progress" class="progress" hidden><div class="bar"></div>'
        '<span class="label"></span></div>')
    if job.get("status") in ("done", "failed"):
        msg = job.get("error") or _job_result(job)
        add(f'<p class="job {e(job["status"])}" id="job-result">last {e(job.get("kind"))}: '
            f'{e(job["status"])} · {e(msg)}</p>')
    add('</section>')

    # (c) assets
    views = store.list_views(project, states=r.by_id())
    stamps = {row["id"]: row["updated_at"] for row in project.db.query(
        "SELECT id, updated_at FROM project_assets WHERE branch_id = ?", [project.branch_id])}
    states = r.by_id()
    errors = {row["asset_id"]: row["error"] for row in project.db.query(
        "SELECT j.asset_id, j.error FROM image_generation_jobs j JOIN project_assets a ON "
        "a.id = j.asset_id WHERE a.branch_id = ? AND j.status = 'failed' AND j.id IN "
        "(SELECT max(id) FROM image_generation_jobs GROUP BY asset_id)", [project.branch_id])}
    dis = " disabled" if stage_locked else ""
    add(f'<section id="assets"><h2>3 · Assets <small>{len(views)}</small></h2>'
        '<div class="toolbar row"><input id="search" type="search" placeholder="search">'
        '<select id="filter-type"><option value="">all types</option>'
        + "".join(f'<option value="{t}">{label}</option>' for t, label in TYPES) + '</select>'
        '<label><input type="checkbox" class="filter" value="conflicts"> conflicts</label>'
        '<label><input type="checkbox" class="filter" value="missing"> missing image</label>'
        '<label><input type="checkbox" class="filter" value="stale"> stale</label>'
        '<label><input type="checkbox" class="filter" value="locked"> locked</label>'
        f'<button data-action="generate-missing"{dis}>Generate missing</button>'
        f'<button data-action="generate-all"{dis}>Generate all</button>'
        f'<button data-action="merge" id="merge-btn" disabled>Merge selected</button>'
        '</div><details id="add-asset"><summary>Add a custom asset</summary><div class="row">'
        '<input id="add-name" placeholder="name"><select id="add-type">'
        + "".join(f'<option value="{t}">{t}</option>' for t, _ in TYPES) + '</select>'
        '<input id="add-description" placeholder="description">'
        f'<button data-action="add"{dis}>Add</button></div></details>'
        '<div id="merge-panel" hidden><p>Merge into <select id="merge-target"></select> '
        'description from <select id="merge-desc"></select> '
        '<button data-action="merge-go">Merge</button> '
        '<button data-action="merge-cancel">Cancel</button></p></div>')
    for t, label in TYPES:
        group = [v for v in views if v.type == t]
        add(f'<h3 class="group" data-type="{t}">{label} <small>{len(group)}</small></h3>'
            f'<div class="grid" data-type="{t}">')
        for v in group:
            add(_card(v, states.get(v.id), stamps.get(v.id), SIZES.get(v.type, (512, 512)),
                      stage_locked, errors.get(v.id)))
        add('</div>')
    add('</section>')

    # (d) conflicts
    conflicted = [v for v in views if v.has_conflicts]
    add(f'<section id="conflicts"><h2>4 · Conflicts <small>{len(conflicted)}</small></h2>')
    if not conflicted:
        add('<p class="muted">no unresolved conflicts</p>')
    for v in conflicted:
        add(f'<div class="conflict" data-id="{v.id}"><h4>{e(v.name)}</h4>'
            f'<p>{e(v.conflict_details or "(no details)")}</p>'
            f'<button data-action="suggest" data-id="{v.id}"{dis}>Suggest</button>'
            '<div class="suggestion" hidden></div>'
            f'<div class="row"><textarea class="resolve-text" rows="2">{e(v.description)}'
            f'</textarea><button data-action="resolve" data-id="{v.id}"{dis}>Resolve with this '
            'text</button></div></div>')
    add('</section>')

    # (e) history
    from stage5cli.history import list_events

    events = list_events(project, limit=15)
    add('<section id="history"><h2>5 · History</h2><table><tr><th>id</th><th>at</th>'
        '<th>command</th><th>summary</th><th></th></tr>')
    for ev in events:
        state = "undone" if ev.undone else ("can undo" if ev.undoable else "permanent")
        add(f'<tr><td>{ev.id}</td><td>{e(ev.at[:19].replace("T", " "))}</td>'
            f'<td>{e(ev.command)}</td><td>{e(ev.summary)}</td><td>{e(state)}</td></tr>')
    add('</table><button data-action="undo">Undo the last change</button></section>')
    add(_gate(r, allow_placeholder))
    add('</main><script src="/static/review.js"></script></body></html>')
    return "".join(parts)


def _job_result(job: dict[str, Any]) -> str:
    res = job.get("result") or {}
    if job.get("kind") == "extract":
        c = res.get("counts") or {}
        return (f"{c.get('character', 0)} characters, {c.get('location', 0)} locations, "
                f"{c.get('prop', 0)} props")
    failed = res.get("failed") or []
    text = f"{res.get('done', 0)} image(s), {len(failed)} failed"
    if failed:
        text += ": " + "; ".join(f"{f.get('asset')}: {f.get('error')}" for f in failed[:3])
    return text


def _card(v, state, updated_at, size, stage_locked: bool, job_error: str | None) -> str:
    img_state = v.image_state or "missing"
    flags = []
    if v.is_priority:
        flags.append('<span class="badge prio">priority</span>')
    if v.has_conflicts:
        flags.append('<span class="badge warn">conflict</span>')
    if v.locked:
        flags.append('<span class="badge locked">locked</span>')
    if v.stale:
        flags.append('<span class="badge">not in script</span>')
    flags.append(f'<span class="badge state-{e(img_state)}">{e(img_state)}</span>')
    w, h = size
    if v.image_key_url and img_state not in ("missing",):
        image = (f'<img src="/images/{v.id}?v={e((updated_at or "")[:23])}" width="{w}" '
                 f'height="{h}" loading="lazy" alt="image key of {e(v.name)}">')
    else:
        image = (f'<svg class="noimage" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
                 f'role="img" aria-label="no image"><rect width="{w}" height="{h}"/></svg>')
    search = " ".join([v.name, *v.aliases]).lower()
    frozen = v.locked or stage_locked
    dis = " disabled" if frozen else ""
    conf = "-" if v.confidence_score is None else f"{v.confidence_score:.2f}"
    scenes = ", ".join(map(str, v.scenes[:12])) + ("…" if len(v.scenes) > 12 else "")
    lock_btn = (f'<button data-action="unlock" data-id="{v.id}"'
                f'{" disabled" if stage_locked else ""}>Unlock</button>' if v.locked else
                f'<button data-action="lock" data-id="{v.id}">Lock</button>')
    why = f'<p class="why">{e(state.why)}</p>' if state is not None and state.why else ""
    if job_error and img_state == "failed":
        why += f'<p class="why bad job-error">{e(job_error)}</p>'
    return (
        f'<article class="card" data-id="{v.id}" data-type="{e(v.type)}" '
        f'data-name="{e(v.name)}" data-search="{e(search)}" data-state="{e(img_state)}" '
        f'data-conflicts="{int(v.has_conflicts)}" data-locked="{int(v.locked)}">'
        f'<div class="thumb">{image}</div>'
        f'<label class="select"><input type="checkbox" class="pick" value="{v.id}"{dis}> '
        f'<b>{e(v.name)}</b></label><div class="badges">{"".join(flags)}</div>'
        f'<p class="meta">aliases {e(", ".join(v.aliases) or "-")} · scenes {e(scenes or "-")}'
        f' · confidence {e(conf)} · {w}×{h}</p>{why}'
        f'<textarea class="description" data-id="{v.id}" data-updated="{e(updated_at)}" '
        f'rows="4"{dis}>{e(v.description)}</textarea>'
        f'<p class="save-state" data-id="{v.id}" aria-live="polite"></p>'
        f'<div class="actions"><button data-action="generate" data-id="{v.id}"{dis}>'
        f'{"Regenerate" if v.image_key_url else "Generate"}</button>{lock_btn}'
        f'<button data-action="promote" data-id="{v.id}">Promote</button>'
        f'<button data-action="remove" data-id="{v.id}"{dis}>Remove</button>'
        f'<button data-action="mentions" data-id="{v.id}">Mentions</button></div>'
        '<div class="mentions" hidden></div></article>')


def _gate(r, allow_placeholder: bool) -> str:
    """The gatekeeper bar: readiness.assess's counts and blocker groups, as they are."""
    total = len(r.assets)
    locked = sum(a.locked for a in r.assets)
    need = sum(1 for a in r.assets if a.image_state in ("missing", "failed", "stale", "off-style"))
    items = "".join(f'<li class="blocker"><b>{e(g.message)}</b> · fix: <code>{e(g.fix)}</code>'
                    '</li>' for g in r.blockers)
    items += "".join(f'<li class="warning">{e(g.message)} · <code>{e(g.fix)}</code></li>'
                     for g in r.warnings)
    has_conflicts = any(g.cause == "conflicts" for g in r.warnings)
    done = r.stage_status == "locked"
    return (
        f'<aside id="gate" data-can-lock="{int(r.can_lock)}"><div class="row">'
        f'<span id="gate-counts">{locked}/{total} assets locked · {need} need images'
        f'{" · stage 5 locked" if done else ""}</span>'
        f'<label><input type="checkbox" id="allow-placeholder"'
        f'{" checked" if allow_placeholder else ""}> allow placeholders</label>'
        + ('<label><input type="checkbox" id="accept-conflicts"> lock with unresolved '
           'conflicts</label>' if has_conflicts and not done else "")
        + f'<button id="lock-all" data-action="lock-all"'
        f'{"" if r.can_lock and not done else " disabled"}>Lock all</button></div>'
        + (f'<ul id="gate-reasons">{items}</ul>' if items and not done else "")
        + '</aside>')
