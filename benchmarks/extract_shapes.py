"""Hostile shapes at the size limit: `stage5 extract` (built-in) on scripts made to break it.

Issue 14 item 3: any script within the size limit (10 MB) finishes in <= 30 s and <= 1 GB.
`benchmarks/extract.py --scaling` measures screenplay-shaped text and the per-asset shapes;
this one measures the shapes that found quadratic paths or memory peaks before (each read
around a name in a way one rule did: a titled name, an epithet, a nickname, a list of props,
an age in an introduction, a sentence that never ends) and the densest element shapes (a
one-word paragraph, a cue, a centred line), each repeated to the size given.

Each shape runs in a fresh process (cold, as `stage5 extract` is): parse, both passes,
categories and the save into a fresh project. Printed per shape: the time, the peak RSS, the
assets kept and a verdict against the target (projected to 10 MB when --size is smaller).

Run: python benchmarks/extract_shapes.py [--size BYTES] [--only NAME,...]   (exits 0; a miss
is printed as MISS). The default size is the limit itself, 10,000,000 bytes (a few minutes);
a smaller --size projects linearly, which overstates the endless sentence (its 2,000 speakers
cost the same at any size).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extract import (  # noqa: E402  (after the path is set)
    _SCALING_CHILD,
    SCALING_TARGET_MB,
    SCALING_TARGET_S,
    _verdict,
    endless_sentence,
)

HEADING = "INT. ROOM - DAY\n\n"


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


SHAPES = {
    # one paragraph, read around each name
    "titled names": lambda n: HEADING + _repeat("Mr. Hoff takes the Dr. Ortiz checks. ", n),
    "epithets": lambda n: HEADING + _repeat("the Beast spits at the Dragon. ", n),
    "nicknames": lambda n: HEADING + _repeat('BOB "BOBBY" SMITH, 40s, and JOE ("JO") KING nod. ', n),
    "ages": lambda n: HEADING + _repeat("BOB (40s), MAE (30), JO, 25, and KAL, now 60, wait. ", n),
    "prop lists": lambda n: HEADING + _repeat(
        "a RED LAMP, a BLUE LAMP, a GREEN LAMP, and a ROTARY PHONE. ", n),
    "brands": lambda n: HEADING + _repeat("a beat-up old Mazda pickup and her Nikon camera. ", n),
    "quotes": lambda n: HEADING + _repeat('He says "YES" and "NO" to BOB. ', n),
    "abbreviations": lambda n: HEADING + _repeat("Dr. A. B. C. D. E. ", n),
    "endless sentence": endless_sentence,
    "caps run": lambda n: HEADING + "the man sees " + _repeat("WORD ", n) + "\n",
    "open brackets": lambda n: HEADING + _repeat("(", n) + "\n",
    # the densest elements
    "one-word paragraphs": lambda n: HEADING + _repeat("A.\n\n", n),
    "one speaker's cues": lambda n: HEADING + _repeat("BOB\nNo.\n\n", n),
    "handled prop": lambda n: HEADING + _repeat("He lifts the lamp.\n\n", n),
    "centred lines": lambda n: HEADING + _repeat("> THE END <\n\n", n),
    "tabs": lambda n: HEADING + _repeat("\tHe\t\tWAITS\t.\n", n),
    "notes and boneyard": lambda n: HEADING + _repeat("[[note]] /* bone */ text\n\n", n),
}


def main() -> int:
    args = sys.argv[1:]
    size = int(args[args.index("--size") + 1]) if "--size" in args else 10_000_000
    only = set(args[args.index("--only") + 1].split(",")) if "--only" in args else None
    print(f"built-in extraction of hostile shapes, {size:,} bytes each (fresh process each; the "
          f"whole `stage5 extract`; target {SCALING_TARGET_S:g} s and {SCALING_TARGET_MB:g} MB "
          "per 10 MB)")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, make) in enumerate(SHAPES.items()):
            if only is not None and label not in only:
                continue
            path = Path(tmp) / f"shape{i}.fountain"
            # at most `size` bytes, a character cut in two at the end dropped
            path.write_text(make(size).encode("utf-8")[:size].decode("utf-8", "ignore"),
                            encoding="utf-8")
            r = subprocess.run([sys.executable, "-c", _SCALING_CHILD, str(path),
                                str(Path(tmp) / f"project{i}"), "--whole-only"],
                               capture_output=True, text=True,
                               timeout=900, cwd=ROOT,
                               env={**os.environ, "STAGE5_HOME": str(Path(tmp) / "home")})
            path.unlink()
            if r.returncode:
                print(f"  {label:20} FAILED: {r.stderr.strip()[-200:]}")
                continue
            _passes, whole, rss, n, _left_out = r.stdout.split()
            per_10mb = float(whole) / size * 10_000_000
            ok = per_10mb <= SCALING_TARGET_S and float(rss) <= SCALING_TARGET_MB
            print(f"  {label:20} extract {float(whole):6.2f} s  peak {float(rss):5.0f} MB  "
                  f"{int(n):5d} assets  ~{per_10mb:4.0f} s per 10 MB  {_verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
