"""Fountain parsing speed: ours against the installed Python peers, in one run.

Parses ../shared/corpus/big_fish.fountain (146 KB, 190 scenes) and the same text repeated to
about 1 MB, with stage5's parser (text -> validated Screenplay model) and with every peer that
is installed (screenplain, jouvence, the PyPI `fountain` package). Best of N runs each, in CPU
time of this process (time.process_time), so other load on the machine does not skew it.
Prints milliseconds, ratios (peer ms / our ms: above 1 means we are faster) and our ms per KB at
both sizes (equal numbers mean linear time).

Target (issue 4): faster than the fastest peer, and linear in input size.
Run: python benchmarks/parse.py
"""

from __future__ import annotations

import gc
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIG_FISH = ROOT.parent / "shared" / "corpus" / "big_fish.fountain"
TARGET_BYTES = 1_000_000
RUNS = {"small": 9, "large": 3}


def peers() -> dict[str, Callable[[str], object]]:
    found: dict[str, Callable[[str], object]] = {}
    try:
        from screenplain.parsers import fountain as screenplain_fountain

        found["screenplain"] = lambda text: screenplain_fountain.parse(io.StringIO(text))
    except ImportError:
        pass
    try:
        from jouvence.parser import JouvenceParser

        found["jouvence"] = lambda text: JouvenceParser().parseString(text)
    except ImportError:
        pass
    try:
        import fountain as pypi_fountain  # the "fountain" package on PyPI

        found["fountain (PyPI)"] = lambda text: pypi_fountain.Fountain(text)
    except ImportError:
        pass
    return found


def best_ms(fn: Callable[[str], object], text: str, runs: int) -> float:
    """Best CPU time of this process over `runs` (other processes on a busy machine do not count)."""
    fn(text)  # warm up (imports, regex caches)
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        t = time.process_time()
        fn(text)
        best = min(best, time.process_time() - t)
    return best * 1000


def main() -> int:
    if not BIG_FISH.is_file():
        print(f"benchmark skipped: {BIG_FISH} not found (the shared corpus sits beside the clone)")
        return 0
    from stage5cli.screenplay import parse_fountain

    small = BIG_FISH.read_text(encoding="utf-8")
    copies = max(1, round(TARGET_BYTES / len(small.encode("utf-8"))))
    large = "\n\n".join([small] * copies)
    sizes = {"small": small, "large": large}
    kb = {k: len(v.encode("utf-8")) / 1000 for k, v in sizes.items()}  # KB = 1000 bytes

    sp = parse_fountain(small)
    print(f"big_fish.fountain: {kb['small']:.0f} KB, {sum(1 for s in sp.scenes if s.number)} scenes, "
          f"{len(sp.elements)} elements; large = {copies} copies = {kb['large']:.0f} KB")
    print(f"python {sys.version.split()[0]}, best CPU time of {RUNS['small']} / {RUNS['large']} runs\n")

    parsers: dict[str, Callable[[str], object]] = {"stage5 (ours)": parse_fountain}
    parsers.update(peers())
    results: dict[str, dict[str, float]] = {}
    for name, fn in parsers.items():
        results[name] = {}
        for size, text in sizes.items():
            try:
                results[name][size] = best_ms(fn, text, RUNS[size])
            except Exception as exc:  # a peer that fails on the input is reported, not fatal
                print(f"  {name} failed on the {size} input: {type(exc).__name__}: {exc}")
                results[name][size] = float("nan")

    ours = results["stage5 (ours)"]
    head = f"{'parser':<18}{'146 KB ms':>11}{'ratio':>8}{'~1 MB ms':>11}{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        print(f"{name:<18}{r['small']:>11.1f}{r['small'] / ours['small']:>7.2f}x"
              f"{r['large']:>11.1f}{r['large'] / ours['large']:>7.2f}x")
    per_kb = {k: ours[k] / kb[k] for k in sizes}
    print(f"\nours: {per_kb['small']:.4f} ms/KB at {kb['small']:.0f} KB, "
          f"{per_kb['large']:.4f} ms/KB at {kb['large']:.0f} KB "
          f"(large/small per-KB ratio {per_kb['large'] / per_kb['small']:.2f}; 1.00 = linear)")
    peer_small = [r["small"] for n, r in results.items() if n != "stage5 (ours)" and r["small"] == r["small"]]
    if peer_small:
        fastest = min(peer_small)
        verdict = "faster" if ours["small"] < fastest else "NOT faster"
        print(f"ours is {verdict} than the fastest peer on big_fish ({fastest / ours['small']:.2f}x)")
    else:
        print("no peer parser installed (pip install screenplain jouvence) - nothing to compare")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
