"""The scene breakdown: `stage5 breakdown`, `export --format breakdown-csv|breakdown-html`.

One row per scene: its number (and the script's own), heading, INT/EXT, day/night, page, length
in eighths of a page (pages.py) and the assets mentioned in it, grouped by category.
The script is the one the project was last extracted from (or `--script FILE`).
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from stage5cli.errors import BlockedError, NotFoundError, UsageError
from stage5cli.project import Project
from stage5cli.screenplay.model import Screenplay

from .categories import CATEGORIES, CATEGORY_IDS, by_id
from .pages import format_eighths, page_count, scene_lengths

CSV_HEADER = ("scene", "script_scene_number", "heading", "int_ext", "location", "time_of_day",
              "day_night", "page", "eighths", "length", "category", "fd_category", "asset_id",
              "asset", "asset_type", "wearer")
COLOURS_ENV = "STAGE5_BREAKDOWN_COLOURS"
SHEET_MARK = '<meta name="generator" content="stage5 breakdown sheets">'

_DAY_NIGHT = (("MIDNIGHT", "Night"), ("NIGHT", "Night"), ("EVENING", "Evening"),
              ("DUSK", "Dusk"), ("SUNSET", "Dusk"), ("TWILIGHT", "Dusk"), ("DAWN", "Dawn"),
              ("SUNRISE", "Dawn"), ("DAYBREAK", "Dawn"), ("MORNING", "Morning"),
              ("AFTERNOON", "Day"), ("NOON", "Day"), ("DAY", "Day"))
_INHERIT = ("CONTINUOUS", "LATER", "SAME", "CONT", "MOMENTS", "MINUTES")


class SceneAsset(BaseModel):
    id: int
    name: str
    type: str
    category: str
    wearer: str | None = None


class SceneBreakdown(BaseModel):
    number: int                  # ours: headings from 1, 0 is the text before the first
    script_scene_number: str | None
    heading: str
    int_ext: str | None
    location: str
    time_of_day: str | None
    day_night: str | None        # Day, Night, Dawn, Dusk, Morning, Evening (CONTINUOUS inherits)
    page: int
    eighths: int
    length: str                  # "1 3/8"
    assets: dict[str, list[SceneAsset]] = Field(default_factory=dict)  # category -> assets


class Breakdown(BaseModel):
    script: dict[str, Any]
    pages: int
    total_eighths: int
    scenes: list[SceneBreakdown]
    warnings: list[str] = Field(default_factory=list)


# ---- building --------------------------------------------------------------------------------


def load_script(project: Project, script: Path | None = None) -> tuple[Screenplay, list[str]]:
    """The script to break down: `script`, else the one the project was extracted from."""
    from stage5cli.screenplay import load

    warnings: list[str] = []
    st = project.stage()
    if script is None:
        if not st["script_path"]:
            raise UsageError("no script has been extracted in this project: run stage5 extract "
                             "SCRIPT, or pass --script FILE")
        path = Path(st["script_path"])
        if not path.is_absolute() and not path.exists():
            path = project.root / path
        if not path.is_file():
            raise UsageError(f"the extracted script {st['script_path']} is gone: pass --script FILE")
        sp = load(path)
        if st["script_sha256"] and sp.source.sha256 != st["script_sha256"]:
            warnings.append(f"{path} changed since it was extracted: re-run stage5 extract so the "
                            "assets match it")
    else:
        sp = load(script)
    if not any(s.number > 0 for s in sp.scenes):
        warnings.append("no scene headings: the breakdown is scene 0 only")
    return sp, warnings


def day_night(time_of_day: str | None, previous: str | None) -> str | None:
    up = (time_of_day or "").upper()
    for word, value in _DAY_NIGHT:
        if re.search(rf"\b{word}\b", up):
            return value
    if any(w in up for w in _INHERIT):
        return previous
    return None


def asset_rows(project: Project) -> list[dict[str, Any]]:
    """Every asset of the branch with its category, wearer and mentioned scenes."""
    from stage5cli import readiness

    out = []
    for v in readiness.list_views(project):
        out.append({"id": v.id, "name": v.name, "type": v.type, "aliases": v.aliases,
                    "category": v.category, "wearer": v.category_info.get("wearer"),
                    "scenes": v.scenes, "stale": v.stale})
    if out:
        marks = ",".join("?" * len(out))
        texts: dict[int, list[tuple[int, str]]] = {}
        for r in project.db.query(
                f"SELECT asset_id, scene_number, text FROM asset_mentions WHERE asset_id IN ({marks})",
                [a["id"] for a in out]):
            texts.setdefault(r["asset_id"], []).append((r["scene_number"], r["text"] or ""))
        for a in out:
            a["mentions"] = texts.get(a["id"], [])
    return out


def build(sp: Screenplay, assets: list[dict[str, Any]], *, warnings: list[str] | None = None,
          scene: int | None = None) -> Breakdown:
    """The breakdown of `sp` with these assets (see `asset_rows`)."""
    lengths = {s.number: s for s in scene_lengths(sp)}
    by_scene: dict[int, list[dict]] = {}
    for a in assets:
        if a.get("stale"):
            continue
        for n in a["scenes"]:
            by_scene.setdefault(n, []).append(a)
    order = {c: i for i, c in enumerate(CATEGORY_IDS)}
    rows: list[SceneBreakdown] = []
    previous: str | None = None
    for s in sp.scenes:
        length = lengths.get(s.number)
        if length is None:  # nothing printed (a scene 0 of notes only)
            continue
        dn = day_night(s.time_of_day, previous) if s.number > 0 else None
        previous = dn or previous
        groups: dict[str, list[SceneAsset]] = {}
        for a in sorted(by_scene.get(s.number, []),
                        key=lambda a: (order.get(a["category"], 99), a["name"].lower())):
            groups.setdefault(a["category"], []).append(SceneAsset(
                id=a["id"], name=a["name"], type=a["type"], category=a["category"],
                wearer=a.get("wearer")))
        rows.append(SceneBreakdown(
            number=s.number, script_scene_number=s.scene_number, heading=s.heading,
            int_ext=s.int_ext, location=s.location, time_of_day=s.time_of_day, day_night=dn,
            page=length.page, eighths=length.eighths, length=format_eighths(length.eighths),
            assets=groups))
    if scene is not None:
        picked = [r for r in rows if r.number == scene]
        if not picked:
            have = f"0-{rows[-1].number}" if rows and rows[0].number == 0 else (
                f"1-{rows[-1].number}" if rows else "none")
            raise NotFoundError(f"no scene {scene} in the script (scenes: {have})")
        rows = picked
    return Breakdown(
        script={"path": sp.source.path, "format": sp.source.format, "sha256": sp.source.sha256,
                "title": sp.title},
        pages=page_count(sp), total_eighths=sum(r.eighths for r in rows), scenes=rows,
        warnings=list(warnings or []))


def breakdown(project: Project, *, script: Path | None = None, scene: int | None = None) -> Breakdown:
    sp, warnings = load_script(project, script)
    return build(sp, asset_rows(project), warnings=warnings, scene=scene)


# ---- CSV -------------------------------------------------------------------------------------


def to_csv(b: Breakdown) -> str:
    """One row per scene x asset (a scene without assets: one row, asset columns empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in b.scenes:
        base = [r.number, r.script_scene_number or "", r.heading, r.int_ext or "", r.location,
                r.time_of_day or "", r.day_night or "", r.page, r.eighths, r.length]
        items = [a for cat in r.assets.values() for a in cat]
        if not items:
            w.writerow([*base, "", "", "", "", "", ""])
        for a in items:
            w.writerow([*base, a.category, by_id(a.category).fd_name, a.id, a.name, a.type,
                        a.wearer or ""])
    return buf.getvalue()


# ---- HTML ------------------------------------------------------------------------------------


def colours(env: str | None = None) -> dict[str, str]:
    """Category colours: the table's defaults, overridden by $STAGE5_BREAKDOWN_COLOURS
    ("cast=#ff0000,props=#8800cc")."""
    from .categories import normalize_category

    out = {c.id: c.colour for c in CATEGORIES}
    raw = os.environ.get(COLOURS_ENV, "") if env is None else env
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        cat = normalize_category(key)
        value = value.strip().lower()
        if not sep or cat is None:
            raise UsageError(f"{COLOURS_ENV}: {item!r} is not CATEGORY=#rrggbb "
                             f"(categories: {', '.join(CATEGORY_IDS)})")
        if not re.fullmatch(r"#[0-9a-f]{6}", value):
            raise UsageError(f"{COLOURS_ENV}: {value!r} for {cat} is not a #rrggbb colour")
        out[cat] = value
    return out


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _ink(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


CSS = """
*{box-sizing:border-box}
body{margin:0;background:#e8e8e4;font:12px/1.35 "Helvetica Neue",Arial,sans-serif;color:#111}
.sheet{background:#fff;width:8.5in;min-height:11in;margin:16px auto;padding:.45in;
border:1px solid #bbb;page-break-after:always;break-after:page}
.sheet:last-child{page-break-after:auto;break-after:auto}
.top{display:grid;grid-template-columns:1fr auto;gap:8px;border-bottom:3px solid #111;padding-bottom:6px}
.top h1{font-size:17px;margin:0;letter-spacing:.04em;text-transform:uppercase}
.top .prod{font-size:12px;color:#444}
.top .no{font-size:26px;font-weight:700;text-align:right}
table.head{width:100%;border-collapse:collapse;margin:8px 0 10px}
table.head td{border:1px solid #111;padding:3px 6px;vertical-align:top}
table.head .k{font-size:9px;text-transform:uppercase;color:#555;display:block}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}
.box{border:1px solid #111;min-height:92px;display:flex;flex-direction:column}
.box h2{margin:0;font-size:11px;padding:3px 6px;text-transform:uppercase;letter-spacing:.05em;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
.box ul{margin:4px 0;padding:0 6px 0 20px}
.box li{margin:1px 0}
.box .wearer{color:#555;font-size:11px}
.box.empty ul{color:#999;list-style:none;padding-left:6px}
footer{margin-top:10px;font-size:10px;color:#666}
@media print{body{background:#fff}.sheet{margin:0;border:0;width:auto;min-height:auto}}
@page{size:letter;margin:.4in}
"""


def _sheet(r: SceneBreakdown, b: Breakdown, cols: dict[str, str], index: int, total: int) -> str:
    title = b.script.get("title") or Path(b.script.get("path") or "script").stem
    no = r.script_scene_number or (str(r.number) if r.number else "0")
    cells = [("Scene", f"{r.number}" + (f" (script {r.script_scene_number})"
                                         if r.script_scene_number else "")),
             ("Int/Ext", r.int_ext or ""), ("Day/Night", r.day_night or r.time_of_day or ""),
             ("Page", r.page), ("Pages", r.length)]
    head = "".join(f'<td><span class="k">{_e(k)}</span>{_e(v)}</td>' for k, v in cells)
    boxes = []
    shown = [c for c in CATEGORIES if c.id in r.assets] + [
        c for c in CATEGORIES if c.id in ("cast", "background", "props", "wardrobe", "vehicles",
                                          "set-dressing") and c.id not in r.assets]
    for c in shown:
        colour = cols[c.id]
        items = r.assets.get(c.id, [])
        lis = "".join(
            f'<li data-asset-id="{a.id}">{_e(a.name)}'
            + (f' <span class="wearer">(worn by {_e(a.wearer)})</span>' if a.wearer else "")
            + "</li>" for a in items) or "<li>none</li>"
        boxes.append(f'<section class="box{"" if items else " empty"}" data-category="{_e(c.id)}">'
                     f'<h2 style="background:{_e(colour)};color:{_ink(colour)}">{_e(c.title)}'
                     f' <small>({_e(c.fd_name)})</small></h2><ul>{lis}</ul></section>')
    return (f'<article class="sheet" data-scene="{r.number}">'
            f'<div class="top"><div><h1>Breakdown sheet</h1><div class="prod">{_e(title)}</div>'
            f'</div><div class="no">{_e(no)}</div></div>'
            f'<table class="head"><tr>{head}</tr><tr><td colspan="5"><span class="k">Scene heading'
            f'</span>{_e(r.heading or "(before the first heading)")}</td></tr>'
            f'<tr><td colspan="5"><span class="k">Set / location</span>{_e(r.location)}</td></tr>'
            f'</table><div class="grid">{"".join(boxes)}</div>'
            f'<footer>sheet {index} of {total} · stage5 · eighths of a 55-line page</footer></article>')


def to_html(b: Breakdown, cols: dict[str, str] | None = None, *, draft: bool = False) -> str:
    """Printable breakdown sheets, one per scene: inline CSS, no script, no links."""
    cols = cols or colours()
    title = b.script.get("title") or Path(b.script.get("path") or "script").stem
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', SHEET_MARK,
           f"<title>{_e(title)}: breakdown sheets{' (draft)' if draft else ''}</title>"
           f"<style>{CSS}</style></head><body>"]
    total = len(b.scenes)
    out.extend(_sheet(r, b, cols, i, total) for i, r in enumerate(b.scenes, start=1))
    if not b.scenes:
        out.append('<p class="sheet">no scenes</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---- export ----------------------------------------------------------------------------------


def require_exportable(project: Project, draft: bool) -> None:
    st = project.stage()
    if st["status"] != "locked" and not draft:
        branch = project.branch()["name"]
        raise BlockedError(f"stage 5 is not locked on branch {branch!r}: run stage5 lock-all, "
                           "or pass --draft to export anyway (marked as a draft)")


def export(project: Project, fmt: str, *, draft: bool = False) -> str:
    """The text of `export --format breakdown-csv|breakdown-html` (fdx: fdx_export.export)."""
    require_exportable(project, draft)
    b = breakdown(project)
    for w in b.warnings:
        sys.stderr.write(f"warning: {w}\n")
    if fmt == "breakdown-csv":
        return to_csv(b)
    return to_html(b, colours(), draft=draft)
