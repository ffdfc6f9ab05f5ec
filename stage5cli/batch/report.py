"""The batch report: `BatchReport` (its JSON, `--report`) and JUnit XML (`--junit`)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stage5cli.pipeline import ASSET_TYPES

from .options import BatchOptions, Style
from .state import now, write_atomic
from .worker import BatchResult

REPORT_VERSION = 1


@dataclass
class ReportOptions:
    style: str
    style_file: str | None
    model: str | None
    extractor: str  # builtin or llm
    generate: bool
    backend: str | None
    lock: bool
    strict: bool
    allow_placeholder: bool
    exports: list[str]
    jobs: int
    llm_concurrency: int
    force: bool
    fail_fast: bool
    engine: str = "local"  # local or ray


@dataclass
class Totals:
    scripts: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    assets: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASSET_TYPES, 0))
    conflicts: int = 0
    images: int = 0
    tokens: int = 0
    cost_usd: float | None = 0.0
    wall_s: float = 0.0
    script_wall_s: float = 0.0  # the scripts' own times added up (skipped ones left out)


@dataclass
class BatchReport:
    version: int
    started_at: str
    finished_at: str
    out: str
    options: ReportOptions
    interrupted: bool
    scripts: list[BatchResult]
    totals: Totals

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "started_at": self.started_at,
                "finished_at": self.finished_at, "out": self.out, "options": asdict(self.options),
                "interrupted": self.interrupted, "scripts": [r.to_dict() for r in self.scripts],
                "totals": asdict(self.totals)}


def build_report(results: list[BatchResult], opts: BatchOptions, style: Style, *,
                 started_at: str, wall_s: float, jobs: int,
                 interrupted: bool = False) -> BatchReport:
    totals = Totals(scripts=len(results), wall_s=round(wall_s, 3))
    for r in results:
        setattr(totals, r.status, getattr(totals, r.status) + 1)
        if r.status == "skipped":
            continue  # counted in the run that made them
        totals.assets += r.assets
        totals.conflicts += r.conflicts
        totals.images += r.images
        totals.tokens += r.tokens
        for k, v in r.counts.items():
            totals.counts[k] = totals.counts.get(k, 0) + v
        if r.cost_usd is None or totals.cost_usd is None:
            totals.cost_usd = None
        else:
            totals.cost_usd = round(totals.cost_usd + r.cost_usd, 6)
        totals.script_wall_s = round(totals.script_wall_s + r.wall_s, 3)
    options = ReportOptions(
        style=style.id, style_file=style.file, model=opts.model,
        extractor="llm" if opts.model else "builtin", generate=opts.generate,
        backend=opts.backend if opts.generate else None, lock=opts.lock,
        strict=opts.strict, allow_placeholder=opts.allow_placeholder,
        exports=list(opts.exports), jobs=jobs, llm_concurrency=opts.llm_concurrency,
        force=opts.force, fail_fast=opts.fail_fast, engine=opts.engine)
    return BatchReport(version=REPORT_VERSION, started_at=started_at, finished_at=now(),
                       out=str(opts.out), options=options, interrupted=interrupted,
                       scripts=results, totals=totals)


def exit_code(report: BatchReport) -> int:
    """130 interrupted, 1 when any script failed, else 0 (ok and skipped)."""
    if report.interrupted:
        return 130
    return 1 if report.totals.failed else 0


def write_report(report: BatchReport, path: Path) -> Path:
    return write_atomic(path, json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: Any) -> str:
    return _XML_BAD.sub("?", "" if text is None else str(text))


def junit_xml(report: BatchReport) -> str:
    """JUnit XML: one testsuite, one testcase per script (failure / skipped elements)."""
    import xml.etree.ElementTree as ET

    t = report.totals
    attrs = {"name": "stage5 batch", "tests": str(t.scripts), "failures": str(t.failed),
             "errors": "0", "skipped": str(t.skipped), "time": f"{t.wall_s:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {**attrs, "timestamp": report.started_at})
    props = ET.SubElement(suite, "properties")
    for k, v in asdict(report.options).items():
        value = v if isinstance(v, str) else json.dumps(v)
        ET.SubElement(props, "property", {"name": k, "value": _xml_text(value)})
    for r in report.scripts:
        case = ET.SubElement(suite, "testcase", {"classname": "stage5.batch",
                                                 "name": _xml_text(r.script),
                                                 "time": f"{r.wall_s:.3f}"})
        summary = (f"project: {r.project}\nassets: {r.assets} ({r.counts})\n"
                   f"conflicts: {r.conflicts}\nimages: {r.images}\ntokens: {r.tokens}\n"
                   f"cost_usd: {r.cost_usd}\nstage: {r.stage}")
        if r.status == "failed":
            el = ET.SubElement(case, "failure", {"message": _xml_text(r.error), "type": "failed"})
            el.text = _xml_text(f"{r.error}\n{summary}")
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", {"message": _xml_text(r.reason or r.error)})
        out = ET.SubElement(case, "system-out")
        out.text = _xml_text(summary + "".join(f"\nwarning: {w}" for w in r.warnings or []))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: BatchReport, path: Path) -> Path:
    return write_atomic(path, junit_xml(report))
