"""Export for the next stage: a versioned JSON/YAML document and an HTML contact sheet.

The document is built once (`build_document`) and everything else renders it: JSON, YAML
(which loads back to exactly the JSON document) and the self-contained HTML contact sheet.
Its JSON Schema ships as `prompts/export.schema.json` (package data `stage5cli.prompts`).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import files
from .db import now
from .errors import BlockedError, Stage5Error, UsageError
from .project import Project

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = "export.schema.json"
FORMATS = ("json", "yaml", "html", "breakdown-csv", "breakdown-html", "fdx")
BREAKDOWN_FORMATS = ("breakdown-csv", "breakdown-html", "fdx")  # breakdown/sheet.py
SHEET_MARK = '<meta name="generator" content="stage5 contact sheet">'


def schema() -> dict[str, Any]:
    """The published JSON Schema of the export document."""
    from importlib.resources import files

    return json.loads((files("stage5cli.prompts") / SCHEMA_FILE).read_text(encoding="utf-8"))


# ---- the document ----------------------------------------------------------------------------


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def _user_mode(path: Path, *, folder: bool = False) -> None:
    """Give a file (0666) or folder (0777) the user's umask, as `open` would (temp files start
    private)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _rel(path: Path, base: Path) -> str:
    """`path` relative to `base` (POSIX separators), so a document travels with its files."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _script_info(project: Project, st: dict[str, Any]) -> dict[str, Any] | None:
    """The extracted script, its path relative to the project folder, and its sha256."""
    from .project import script_file

    path = script_file(project, st["script_path"])
    if path is None:
        return None
    return {"path": _rel(path, project.root), "sha256": st["script_sha256"]}


def _image_info(project: Project, rel: str | None, name: str, *, strict: bool,
                base: Path | None = None) -> dict | None:
    if not rel:
        return None
    path = project.root / rel
    if not path.is_file():
        if strict:
            raise Stage5Error(f"the image of asset {name!r} is missing ({path}): restore the file "
                              "or export with --draft")
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        raw = path.read_bytes()
        with Image.open(path) as im:
            width, height = im.size
    except (OSError, UnidentifiedImageError) as e:
        raise Stage5Error(f"cannot read the image of asset {name!r} ({path}): {e}") from None
    return {"path": _rel(path, base or Path.cwd()), "sha256": hashlib.sha256(raw).hexdigest(),
            "width": width, "height": height}


def build_document(project: Project, *, draft: bool = False, base: Path | None = None
                   ) -> dict[str, Any]:
    """The export document. Refused (exit 3) unless stage 5 is locked or `draft` is set.

    Paths travel: `project.path` and every `image.path` are relative to `base`, the folder the
    document is written to (default: the current folder, where `export > file` puts it); the
    script's path is relative to the project folder."""
    base = Path(base) if base is not None else Path.cwd()
    from . import readiness, store

    st = project.stage()
    locked = st["status"] == "locked"
    branch = project.branch()["name"]
    if not locked and not draft:
        raise BlockedError(f"stage 5 is not locked on branch {branch!r}: run stage5 lock-all, "
                           "or pass --draft to export anyway (marked as a draft)")
    style = project.locked_style()
    mentions: dict[int, list[dict]] = {}
    for m in project.db.query(
        "SELECT m.asset_id, m.scene_number, m.text, m.context FROM asset_mentions m "
        "JOIN project_assets a ON a.id = m.asset_id WHERE a.branch_id = ? "
        "ORDER BY m.asset_id, m.scene_number, m.id", [project.branch_id],
    ):
        mentions.setdefault(m["asset_id"], []).append(
            {"scene_number": m["scene_number"], "text": m["text"], "context": m["context"]})
    styles = {r["id"]: r["sha256"] for r in project.db.query("SELECT id, sha256 FROM style_capsules")}
    style_of = {r["id"]: r["visual_style_capsule_id"] for r in store.rows(project)}
    out_assets = []
    for v in readiness.list_views(project):
        item = v.model_dump(mode="json")
        item["mentions"] = mentions.get(v.id, [])
        image = _image_info(project, v.image_key_url, v.name, strict=not draft, base=base)
        if image is not None:
            image["style_sha256"] = styles.get(style_of.get(v.id))
        item["image"] = image
        out_assets.append(item)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now(),
        "draft": draft,  # True only with --draft (an unlocked stage needs it)
        "project": {"uid": project.uid, "path": _rel(project.root, base)},
        "branch": branch,
        "stage": {
            "number": st["stage"], "status": st["status"],
            "script": _script_info(project, st),
        },
        "style": None if style is None else {
            "id": style[0]["style_id"], "name": style[0]["name"], "sha256": style[0]["sha256"],
            "body": style[1].model_dump(mode="json"),
        },
        "assets": out_assets,
    }


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml

    # safe_dump quotes every string that would load as another type ("yes", "1.0", dates).
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


# ---- writing files ---------------------------------------------------------------------------


def _cannot_write(path: Path, e: OSError) -> UsageError:
    return UsageError(f"cannot write {path}: {e.strerror or e}")


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temp file in the same folder and a rename."""
    try:
        files.write_text(path, text)
        _user_mode(Path(path))
    except OSError as e:
        raise _cannot_write(path, e) from None
    return Path(path)


def export(project: Project, fmt: str, out: Path | None, *, draft: bool = False) -> tuple[str, Path | None]:
    """Build and render; write to `out` when given. Returns (text or html, path written)."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "html" and out is None:
        raise UsageError("export --format html writes a folder: pass --out DIR")
    if fmt in BREAKDOWN_FORMATS:
        if fmt == "fdx":
            from .breakdown.fdx_export import export_fdx

            text = export_fdx(project, draft=draft)
        else:
            from .breakdown.sheet import export as export_breakdown

            text = export_breakdown(project, fmt, draft=draft)
        return text, (None if out is None else write_text(Path(out), text))
    # json/yaml: paths relative to the file's folder; html copies the images next to the page
    # (DIR/images/), so its document keeps paths the copy can read from here
    doc = build_document(project, draft=draft,
                         base=None if out is None or fmt == "html" else Path(out).parent)
    if fmt == "html":
        return "", write_contact_sheet(doc, Path(out))  # type: ignore[arg-type]
    text = to_json(doc) if fmt == "json" else to_yaml(doc)
    if out is None:
        return text, None
    return text, write_text(Path(out), text)



def write_export(project: Project, *, fmt: str, out: Path, draft: bool = False) -> Path:
    """Export to a file (json/yaml) or a folder (html); return what was written."""
    _, written = export(project, fmt, Path(out), draft=draft)
    assert written is not None
    return written

# ---- the HTML contact sheet -------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:#f4f4f1;color:#1d1d1b}
header{margin-bottom:20px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 12px;border-bottom:2px solid #1d1d1b;padding-bottom:4px}
.meta{color:#555;font-size:13px}
.draft{display:inline-block;background:#b3261e;color:#fff;padding:2px 8px;border-radius:4px;
font-weight:600;margin-left:8px}
.style{background:#fff;border:1px solid #ddd;border-radius:8px;padding:14px 16px}
.style code{font-size:12px;word-break:break-all}
.swatches{display:flex;gap:6px;margin:8px 0}
.swatch{width:44px;height:44px;border-radius:6px;border:1px solid #0003;display:flex;
align-items:flex-end;justify-content:center;font-size:9px}
.prompt{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;
background:#f7f7f7;padding:8px;border-radius:6px;margin:6px 0 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;overflow:hidden;display:flex;
flex-direction:column}
.card .pic{background:#e9e9e6;display:flex;align-items:center;justify-content:center;height:240px}
.card img{max-width:100%;max-height:240px;display:block}
.card .none{color:#888;font-style:italic}
.card .body{padding:10px 12px}
.card h3{font-size:15px;margin:0 0 4px;display:flex;justify-content:space-between;gap:8px}
.badge{font-size:11px;font-weight:600;padding:1px 7px;border-radius:10px;white-space:nowrap;
align-self:flex-start}
.badge.locked{background:#1f7a3a;color:#fff}
.badge.unlocked{background:#ddd;color:#333}
.badge.placeholder{background:#7a4b00;color:#fff}
.badge.stale,.badge.off-style{background:#b3261e;color:#fff}
.badges{display:flex;gap:4px;flex-wrap:wrap;justify-content:flex-end}
.card .pic{position:relative}
.pic .mark{position:absolute;top:8px;left:8px;background:#7a4b00e6;color:#fff;font-weight:700;
font-size:12px;padding:2px 8px;border-radius:4px;text-transform:uppercase;letter-spacing:.04em}
.warn{background:#fff4e5;border-left:3px solid #e08a00;padding:6px 10px;margin:10px 0 0;font-size:13px}
.kv{font-size:12px;color:#555;margin:2px 0}
.desc{margin:6px 0}
.conflict{background:#fff4e5;border-left:3px solid #e08a00;padding:4px 8px;font-size:12px;margin-top:6px}
.stale{color:#b3261e;font-size:12px}
footer{margin-top:32px;color:#777;font-size:12px}
"""

def _ink(colour: str) -> str:
    """Black or white text, whichever reads on this #rrggbb background."""
    try:
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    except ValueError:
        return "#000"
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


TYPE_TITLES = {"character": "Characters", "location": "Locations", "prop": "Props"}
# image states that get a badge on the card (readiness.assess decides them)
IMAGE_BADGES = {"placeholder": "placeholder", "stale": "stale image", "off-style": "other style"}


def _sheet_image_names(doc: dict[str, Any]) -> dict[str, str]:
    """Source image path -> file name inside DIR/images/ (unique, stable)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for a in doc["assets"]:
        img = a.get("image")
        if not img or img["path"] in names:
            continue
        base = Path(img["path"]).name
        name = base if base not in used else f"{img['sha256'][:12]}-{base}"
        used.add(name)
        names[img["path"]] = name
    return names


def _card(a: dict[str, Any], names: dict[str, str]) -> str:
    img = a.get("image")
    if img:
        pic = (f'<img src="images/{_e(names[img["path"]])}" alt="{_e(a["name"])}" '
               f'width="{int(img["width"])}" height="{int(img["height"])}">')
    else:
        pic = '<span class="none">no image</span>'
    state = a.get("image_state") or ""
    badge = ('<span class="badge locked">locked</span>' if a["locked"]
             else '<span class="badge unlocked">unlocked</span>')
    mark = ""
    if state in IMAGE_BADGES:  # a visible mark on the image and a badge by the name
        badge = f'<span class="badge {_e(state)}">{_e(IMAGE_BADGES[state])}</span>' + badge
        if img:
            mark = f'<span class="mark">{_e(IMAGE_BADGES[state])}</span>'
    parts = [f'<article class="card" data-asset-id="{int(a["id"])}" '
             f'data-image-state="{_e(state or "none")}">',
             f'<div class="pic">{pic}{mark}</div><div class="body">',
             f'<h3><span class="name">{_e(a["name"])}</span><span class="badges">{badge}</span></h3>',
             f'<p class="kv">{_e(a["type"])}{" · priority" if a["is_priority"] else ""}'
             f'{" · from the library" if a["origin"] == "library" else ""}</p>']
    if a["aliases"]:
        parts.append(f'<p class="kv">also: {_e(", ".join(a["aliases"]))}</p>')
    if a["description"]:
        parts.append(f'<p class="desc">{_e(a["description"])}</p>')
    scenes = ", ".join(str(s) for s in a["scenes"])
    parts.append(f'<p class="kv">scenes: {_e(scenes) or "none"}</p>')
    if a["has_conflicts"]:
        parts.append(f'<div class="conflict"><strong>conflict:</strong> '
                     f'{_e(a["conflict_details"] or "unresolved")}</div>')
    if a["stale"]:
        parts.append('<p class="stale">not found in the latest script</p>')
    parts.append("</div></article>")
    return "".join(parts)


def render_html(doc: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """The contact sheet page: inline CSS, relative image links, no script, every text escaped."""
    names = names if names is not None else _sheet_image_names(doc)
    title = f"stage5 contact sheet: {Path(doc['project']['path']).name} ({doc['branch']})"
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', SHEET_MARK,
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"]
    draft = '<span class="draft">DRAFT</span>' if doc["draft"] else ""
    out.append(f"<header><h1>{_e(title)}{draft}</h1>"
               f'<p class="meta">stage {int(doc["stage"]["number"])}: {_e(doc["stage"]["status"])}'
               f' · {len(doc["assets"])} assets · project {_e(doc["project"]["uid"])}'
               f' · exported {_e(doc["generated_at"])} · schema {_e(doc["schema_version"])}</p>')
    style = doc["style"]
    if style:
        body = style["body"]
        swatches = "".join(
            f'<div class="swatch" style="background:{_e(c)};color:{_ink(c)}" title="{_e(c)}">'
            f'{_e(c)}</div>' for c in body.get("palette", []))
        out.append(
            f'<section class="style"><h2 style="margin-top:0">Style: {_e(style["name"])}</h2>'
            f'<p class="kv">id <code>{_e(style["id"])}</code> · sha256 '
            f'<code>{_e(style["sha256"])}</code></p>'
            f'<p class="desc">{_e(body.get("description"))}</p>'
            f'<div class="swatches">{swatches}</div>'
            f'<div class="prompt">{_e(body.get("prompt"))}</div>'
            + (f'<p class="kv">negative: {_e(body["negative_prompt"])}</p>'
               if body.get("negative_prompt") else "")
            + (f'<p class="kv">lighting: {_e(body["lighting"])}</p>' if body.get("lighting") else "")
            + (f'<p class="kv">camera: {_e(body["camera"])}</p>' if body.get("camera") else "")
            + "</section>")
    else:
        out.append('<section class="style"><h2 style="margin-top:0">Style: none locked</h2></section>')
    flagged = [a for a in doc["assets"] if a.get("image_state") in IMAGE_BADGES]
    if flagged:
        by: dict[str, int] = {}
        for a in flagged:
            by[IMAGE_BADGES[a["image_state"]]] = by.get(IMAGE_BADGES[a["image_state"]], 0) + 1
        what = ", ".join(f"{n} {k}" for k, n in by.items())
        out.append(f'<p class="warn">not final images: {_e(what)} (marked on the cards)</p>')
    out.append("</header><main>")
    groups: dict[str, list[dict]] = {}
    for a in doc["assets"]:
        groups.setdefault(a["type"], []).append(a)
    for kind, items in groups.items():
        out.append(f'<section class="group" id="type-{_e(kind)}">'
                   f'<h2>{_e(TYPE_TITLES.get(kind, kind))} ({len(items)})</h2><div class="grid">')
        out.extend(_card(a, names) for a in items)
        out.append("</div></section>")
    if not doc["assets"]:
        out.append('<p class="none">no assets</p>')
    out.append("</main><footer>made by stage5 · open index.html in any browser; "
               "the folder is self-contained</footer></body></html>")
    return "\n".join(out) + "\n"


def write_contact_sheet(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write DIR/index.html and DIR/images/ (a fresh folder, swapped in by renames).

    DIR must not exist, be empty, or be an earlier contact sheet (it is then replaced).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UsageError(f"cannot write {out_dir}: it is a file, not a folder")
        index = out_dir / "index.html"
        ours = index.is_file() and SHEET_MARK in index.read_text(encoding="utf-8", errors="replace")
        if any(out_dir.iterdir()) and not ours:
            raise UsageError(f"{out_dir} is not empty and is not a stage5 contact sheet: "
                             "choose a new folder")
    names = _sheet_image_names(doc)
    page = render_html(doc, names)
    tmp: Path | None = None
    old: Path | None = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
        (tmp / "images").mkdir()
        for src, name in names.items():
            shutil.copyfile(src, tmp / "images" / name)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        _user_mode(tmp, folder=True)  # mkdtemp makes it private; a sheet is meant to be shared
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        tmp = None
    except OSError as e:
        if old is not None and not out_dir.exists():
            with contextlib.suppress(OSError):
                os.replace(old, out_dir)
            old = None
        raise _cannot_write(out_dir, e) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out_dir / "index.html"
