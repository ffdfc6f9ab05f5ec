"""Start-up overhead of the CLI: `stage5 --help`, and the everyday commands `status`, `review`
and `show` on Big Fish (220 assets, the built-in extractor on ../shared/corpus/big_fish.fountain;
a small bundled script when ../shared is absent), minus a bare interpreter.

Targets: --help <= 0.3 s over bare python; status, review, show <= 0.15 s over bare python.
Prints the median of several runs of each, measured in this one run (no assertion: a ratio).

Measured as an installed stage5 runs: the subprocesses run without PYTHONDONTWRITEBYTECODE (some
environments set it, and then stage5cli's own modules are compiled from source on every run,
~50 ms, where a real install has .pyc files: pip compiles site-packages, an editable checkout
writes them on its first run), and each command runs once untimed first, so that the bytecode
is written and the files are in the page cache.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 9
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(args: list[str], cwd: str | None = None) -> float:
    subprocess.run(args, check=True, capture_output=True, cwd=cwd, env=ENV)  # warm-up
    samples = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, cwd=cwd, env=ENV)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    py = sys.executable
    repo = Path(__file__).resolve().parents[1]
    big_fish = repo.parent / "shared" / "corpus" / "big_fish.fountain"
    script = big_fish if big_fish.is_file() else repo / "examples" / "scripts" / "the_last_lamp.fountain"
    bare = timed([py, "-c", "pass"])
    helptime = timed([py, "-m", "stage5cli", "--help"])
    with tempfile.TemporaryDirectory() as d:
        for args in (["init", d], ["style", "lock", "film-noir", "-p", d], ["extract", str(script), "-p", d]):
            subprocess.run([py, "-m", "stage5cli", *args], check=True, capture_output=True)
        out = subprocess.run([py, "-m", "stage5cli", "review", "--json"], check=True,
                             capture_output=True, text=True, cwd=d).stdout
        assets = json.loads(out)
        name = assets[len(assets) // 2]["name"]
        everyday = {cmd: timed([py, "-m", "stage5cli", *cmd.split(" ", 1)[:1],
                                *([name] if cmd == "show" else [])], cwd=d)
                    for cmd in ("status", "review", "show")}
    print(f"bare python -c pass      : {bare * 1000:7.1f} ms")
    print(f"stage5 --help            : {helptime * 1000:7.1f} ms  overhead {(helptime - bare) * 1000:6.1f} ms"
          f"  (target <= 300 ms: {'ok' if helptime - bare <= 0.3 else 'MISSED'})")
    print(f"project: {script.name}, {len(assets)} assets")
    for cmd, t in everyday.items():
        print(f"stage5 {cmd:<18}: {t * 1000:7.1f} ms  overhead {(t - bare) * 1000:6.1f} ms"
              f"  (target <= 150 ms: {'ok' if t - bare <= 0.15 else 'MISSED'})")
    print(f"ratio help/bare          : {helptime / bare:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
