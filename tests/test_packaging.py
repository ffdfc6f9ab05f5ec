"""A non-editable install works from any folder: prompts, styles and the demo script ship."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_runs_from_another_folder(tmp_path):
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(wheels), str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    [wheel] = wheels.glob("stage5-*.whl")
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for f in ("review.js", "review.css"):  # the review room's page works with no network
        assert (target / "stage5cli" / "serve" / "static" / f).is_file(), f
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "STAGE5_HOME": str(tmp_path / "home")}

    def stage5(*args):
        return subprocess.run([sys.executable, "-m", "stage5cli", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=120)

    where = subprocess.run([sys.executable, "-c", "import stage5cli; print(stage5cli.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(target)), where.stdout  # not the checkout
    styles = json.loads(stage5("style", "list", "--json").stdout)
    assert len(styles) >= 8
    r = stage5("demo", "--dir", "d", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stage"] == "locked"
    assert (elsewhere / "d" / "contact-sheet" / "index.html").is_file()
    # the package data that sizes prompts ships in the wheel (CLIP merges, colour names)
    counted = subprocess.run([sys.executable, "-c", "from stage5cli.images import clip_bpe; "
                              "from stage5cli.colours import colour_name; "
                              "print(clip_bpe.count('a photo of a cat'), colour_name('#000000'))"],
                             cwd=elsewhere, env=env, capture_output=True, text=True)
    assert counted.stdout.split() == ["7", "black"], counted.stderr
