"""Extraction quality on the dev set: precision/recall per kind against hand-written gold.

For every corpus script in ../shared/corpus that has a gold file in ../shared/eval/gold, this
runs the real CLI in a fresh project (init, style lock, extract, review --json) and scores the
assets with ../shared/eval/score.py (the annotation rules in ../shared/eval/README.md are the
definition of right). Printed per script and as macro averages over the scripts:

- characters, locations, key props: precision and recall;
- descriptions: the share of look facts kept (content words of a gold character's first `look`
  quote, the introduction, found in the matched asset's description), descriptions carrying
  meta-text about the script or the rendering instead of visual fact, and character
  descriptions that name another lead;
- the wall time of `stage5 extract` (a whole process, start-up included).

Usage:
  python benchmarks/extract_quality.py                    # built-in extractor
  python benchmarks/extract_quality.py --model openai/m --api-base http://127.0.0.1:8080/v1
  python benchmarks/extract_quality.py --only big_fish -v # one script, with misses and FPs
  python benchmarks/extract_quality.py --json             # figures as JSON
Skips (exit 0, one line) when ../shared is not beside the repository.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
GOLD = SHARED / "eval" / "gold"
SCORE = SHARED / "eval" / "score.py"
KINDS = ("character", "location", "prop")
TARGETS = {"character": (0.95, 0.95), "location": (0.92, 0.92), "prop": (0.80, 0.75)}

# Phrases that talk about the script, the extraction or the rendering rather than what is seen.
META = re.compile(
    r"\b(the )?(script|screenplay|scene heading|text) (gives|says|does not|doesn't|offers|"
    r"describes|mentions|provides)\b|\bno further (visual )?description\b|\bis described as\b|"
    r"\bshown as a\b|\breference (image|sheet)\b|\bin the [\w\s-]+ style\b|\bfull-length\b",
    re.I)
STOP = set("""a an the and or but of in on at to for with from by as is are was were be been
his her their its him she he they them it this that these those who whom which what when where
while into onto over under out up down off than then there here one two not no yes very just
only also too more most some any all each both few many much such own same other another like
looks look looking seems seem dressed wearing wears wear""".split())


def _load_score():
    spec = importlib.util.spec_from_file_location("stage5_eval_score", SCORE)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _stage5(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stage5cli", *args], capture_output=True,
                          text=True, env=env, timeout=1800)


def run_script(script: Path, model: str | None, api_base: str | None) -> tuple[list[dict], float]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("STAGE5_PROJECT", None)
    with tempfile.TemporaryDirectory() as tmp:
        proj = str(Path(tmp) / "p")
        for args in (("init", proj), ("style", "lock", "film-still", "-p", proj)):
            r = _stage5(*args, env=env)
            if r.returncode:
                raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
        extra = (["--model", model] if model else []) + (["--api-base", api_base] if api_base else [])
        t0 = time.perf_counter()
        r = _stage5("extract", str(script), "-p", proj, *extra, env=env)
        wall = time.perf_counter() - t0
        if r.returncode not in (0, 1):
            raise RuntimeError(f"extract {script.name}: {r.stderr.strip()}")
        r = _stage5("review", "--json", "-p", proj, env=env)
        if r.returncode:
            raise RuntimeError(f"review {script.name}: {r.stderr.strip()}")
        data = json.loads(r.stdout)
    return (data.get("assets", data) if isinstance(data, dict) else data), wall


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z'-]{2,}", text.lower()) if w not in STOP]


def _stem(w: str) -> str:
    return w.rstrip("'s")[:5]


def description_figures(assets: list[dict], gold: dict, norm) -> dict:
    """Look facts kept, meta-text, other leads named: from the gold `look` quotes and `main`."""
    chars = [a for a in assets if a.get("type") == "character"]
    names = {id(a): {norm(a.get("name", ""))} | {norm(x) for x in a.get("aliases") or []}
             for a in chars}
    leads = []
    kept, total = 0, 0
    for e in gold.get("characters") or []:
        enames = {norm(e["name"])} | {norm(x) for x in e.get("aliases") or []}
        hit = next((a for a in chars if names[id(a)] & enames), None)
        if e.get("main"):
            leads.append((enames, hit))
        looks = e.get("look") or []
        if not looks or hit is None:
            continue
        quote = " ".join(re.findall(r'"([^"]+)"', looks[0])) or looks[0].split(":", 1)[-1]
        own = {w for n in enames for w in n.split()}
        facts = {_stem(w) for w in _words(quote) if w not in own}
        if not facts:
            continue
        desc = {_stem(w) for w in _words(hit.get("description") or "")}
        kept += len(facts & desc)
        total += len(facts)
    descs = [a.get("description") or "" for a in assets]
    meta = sum(1 for d in descs if META.search(d))
    naming = 0
    for a in chars:
        d = " " + norm(a.get("description") or "") + " "
        mine = names[id(a)]
        for enames, hit in leads:
            if hit is a or not enames or enames & mine:
                continue
            # a lead's name, but only a distinctive one (two letters or more, not a common word)
            if any(len(n) > 2 and f" {n} " in d for n in enames):
                naming += 1
                break
    return {"look_facts_kept": kept / total if total else None, "look_facts": total,
            "meta_text": meta, "descriptions": len(descs),
            "naming_other_lead": naming, "characters": len(chars)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--api-base")
    ap.add_argument("--only", action="append", default=[], help="script stem (repeatable)")
    ap.add_argument("-v", action="store_true", help="list misses and false positives")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if not (CORPUS.is_dir() and GOLD.is_dir() and SCORE.is_file()):
        print(f"skipped: {SHARED} (corpus, eval gold, score.py) is not beside this repository")
        return 0
    import yaml

    score = _load_score()
    scripts = sorted(p for p in CORPUS.iterdir()
                     if (GOLD / f"{p.stem}.yaml").is_file() and (not a.only or p.stem in a.only))
    rows = []
    for script in scripts:
        gold_path = GOLD / f"{script.stem}.yaml"
        assets, wall = run_script(script, a.model, a.api_base)
        s = score.score(assets, score.load_gold(str(gold_path)))
        d = description_figures(assets, yaml.safe_load(gold_path.read_text(encoding="utf-8")),
                                score.norm)
        rows.append({"script": script.stem, "extract_wall_s": round(wall, 3), "scores": s,
                     "descriptions": d})
    macro = {k: {m: sum(r["scores"][k][m] for r in rows) / len(rows)
                 for m in ("precision", "recall")} for k in KINDS} if rows else {}
    kept = [r["descriptions"]["look_facts_kept"] for r in rows
            if r["descriptions"]["look_facts_kept"] is not None]
    summary = {
        "extractor": a.model or "builtin",
        "macro": macro,
        "look_facts_kept": sum(kept) / len(kept) if kept else None,
        "meta_text": sum(r["descriptions"]["meta_text"] for r in rows),
        "descriptions": sum(r["descriptions"]["descriptions"] for r in rows),
        "naming_other_lead": sum(r["descriptions"]["naming_other_lead"] for r in rows),
        "characters": sum(r["descriptions"]["characters"] for r in rows),
    }
    if a.json:
        print(json.dumps({"scripts": rows, "summary": summary}, indent=2))
        return 0
    print(f"extraction quality, {summary['extractor']} extractor, dev set ({len(rows)} scripts)")
    print(f"{'script':26} {'char P/R':>11} {'loc P/R':>11} {'prop P/R':>11} {'look':>5} "
          f"{'meta':>5} {'lead':>5} {'wall s':>7}")
    for r in rows:
        s, d = r["scores"], r["descriptions"]
        pr = [f"{s[k]['precision']:.2f}/{s[k]['recall']:.2f}" for k in KINDS]
        look = "-" if d["look_facts_kept"] is None else f"{d['look_facts_kept']:.2f}"
        print(f"{r['script']:26} {pr[0]:>11} {pr[1]:>11} {pr[2]:>11} {look:>5} "
              f"{d['meta_text']:>5} {d['naming_other_lead']:>5} {r['extract_wall_s']:>7.2f}")
        if a.v:
            for k in KINDS:
                for fp in s[k]["false_positives"]:
                    print(f"    {k} false positive: {fp}")
                for m in s[k]["missed"]:
                    print(f"    {k} missed: {m}")
    if not rows:
        return 0
    print("macro average (target):")
    for k in KINDS:
        p, r = macro[k]["precision"], macro[k]["recall"]
        tp, tr = TARGETS[k]
        ok = "ok" if p >= tp and r >= tr else "MISS"
        print(f"  {k:9} P {p:.2f} (>= {tp:.2f})  R {r:.2f} (>= {tr:.2f})  {ok}")
    lk = summary["look_facts_kept"]
    print(f"  look facts kept {'-' if lk is None else f'{lk:.2f}'} (>= 0.80)  "
          f"{'ok' if lk is not None and lk >= 0.8 else 'MISS'}")
    print(f"  descriptions with meta-text {summary['meta_text']}/{summary['descriptions']} (0)  "
          f"{'ok' if summary['meta_text'] == 0 else 'MISS'}")
    share = summary["naming_other_lead"] / summary["characters"] if summary["characters"] else 0
    print(f"  character descriptions naming another lead {summary['naming_other_lead']}/"
          f"{summary['characters']} = {share:.1%} (<= 5%)  {'ok' if share <= 0.05 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
