"""Start-up overhead of the CLI: `stage5 --help` (and `stage5 status`) minus a bare interpreter.

Target: <= 0.3 s. Prints the median of several runs of each, measured in this one run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 9


def timed(args: list[str], cwd: str | None = None) -> float:
    samples = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, cwd=cwd)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    py = sys.executable
    bare = timed([py, "-c", "pass"])
    helptime = timed([py, "-m", "stage5cli", "--help"])
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([py, "-m", "stage5cli", "init", d], check=True, capture_output=True)
        status = timed([py, "-m", "stage5cli", "status"], cwd=d)
    print(f"bare python -c pass      : {bare * 1000:7.1f} ms")
    print(f"stage5 --help            : {helptime * 1000:7.1f} ms  overhead {(helptime - bare) * 1000:6.1f} ms"
          f"  (target <= 300 ms: {'ok' if helptime - bare <= 0.3 else 'MISSED'})")
    print(f"stage5 status            : {status * 1000:7.1f} ms  overhead {(status - bare) * 1000:6.1f} ms")
    print(f"ratio help/bare          : {helptime / bare:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
