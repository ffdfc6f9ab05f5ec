"""Review-room benchmark: Big Fish (../shared/corpus/big_fish.fountain, ~220 assets).

Printed, each the median of several runs after one warm-up:
1. the page (GET /) rendered on the server, through the ASGI app in-process (target <= 300 ms);
2. an autosave round trip (POST /api/assets/ID/description; target <= 50 ms);
3. the CLI doing the same read: `stage5 review --json` in-process, and the ratios.

Set-up (not timed): a project with film-noir locked, the script extracted with the built-in
extractor and every asset given a placeholder image key (so the cards show images, as in use).
Run: python benchmarks/serve.py (exits 0; a missed target is printed as MISS).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch a price list
SCRIPT = ROOT.parent / "shared" / "corpus" / "big_fish.fountain"
RUNS = 9
TARGET_PAGE_MS = 300
TARGET_SAVE_MS = 50


def median_ms(fn, runs: int = RUNS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    if not SCRIPT.is_file():
        print(f"skipped: {SCRIPT} is not there (../shared beside the repository)")
        return 0
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    try:
        from starlette.testclient import TestClient
    except ImportError:
        print("skipped: the serve extra is not installed (pip install -e '.[serve]')")
        return 0
    from typer.testing import CliRunner

    from stage5cli.cli import app as cli_app
    from stage5cli.serve.app import create_app

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STAGE5_HOME"] = str(Path(tmp) / "home")
        root = Path(tmp) / "bigfish"
        for args in (["init", root], ["style", "lock", "film-noir", "-p", root],
                     ["extract", SCRIPT, "-p", root], ["generate", "--all", "-y", "-p", root]):
            r = runner.invoke(cli_app, [str(a) for a in args])
            assert r.exit_code == 0, (args, r.output)
        token = "bench"
        client = TestClient(create_app(root, token=token), base_url="http://127.0.0.1:8150")
        client.get(f"/?token={token}")
        page = client.get("/").text
        cards = page.count('<article class="card"')
        aid = json.loads(runner.invoke(cli_app, ["review", "--json", "-p", str(root)]
                                       ).stdout)[0]["id"]
        headers = {"X-Stage5-Token": token, "Origin": "http://127.0.0.1:8150"}
        n = [0]

        def save():
            n[0] += 1
            r = client.post(f"/api/assets/{aid}/description", headers=headers,
                            json={"description": f"a tall man in a white suit, take {n[0]}"})
            assert r.status_code == 200, r.text

        def cli_review():
            r = runner.invoke(cli_app, ["review", "--json", "-p", str(root)])
            assert r.exit_code == 0

        page_ms = median_ms(lambda: client.get("/"))
        state_ms = median_ms(lambda: client.get("/api/state"))
        save_ms = median_ms(save)
        cli_ms = median_ms(cli_review)
    ok_page = page_ms <= TARGET_PAGE_MS
    ok_save = save_ms <= TARGET_SAVE_MS
    print(f"Big Fish: {cards} asset cards, page {len(page) // 1024} KiB")
    print(f"page render (GET /): {page_ms:.1f} ms (target <= {TARGET_PAGE_MS} ms) "
          f"{'ok' if ok_page else 'MISS'}")
    print(f"gate/progress poll (GET /api/state): {state_ms:.1f} ms")
    print(f"autosave round trip (POST description): {save_ms:.1f} ms (target <= "
          f"{TARGET_SAVE_MS} ms) {'ok' if ok_save else 'MISS'}")
    print(f"CLI review --json (in-process, same read): {cli_ms:.1f} ms; page/CLI = "
          f"{page_ms / cli_ms:.2f}x, autosave/CLI = {save_ms / cli_ms:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
