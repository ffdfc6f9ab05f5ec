"""The HTML contact sheet: a self-contained folder, escaped text, checked in headless Chromium."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import stage5cli.cli.commands.lock  # noqa: F401  (export)
from tests.conftest import one_line_error, table_dump
from tests.helpers import TRIO, add_assets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium)")

EVIL_NAME = '<script>alert("name")</script> & co'
EVIL_DESC = '"><img src=x onerror=alert(1)> <b>bold</b> & \'quotes\''


class Page(HTMLParser):
    """Collects tags, attributes and visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture
def locked(styled, cli) -> Path:
    add_assets(styled, [*TRIO, ("WHARF", "location", "A wooden wharf in fog.")], conflicts=("MARA",))
    conn = sqlite3.connect(styled / "stage5.db")
    conn.execute("UPDATE project_assets SET name = ?, description = ?, metadata = json_set(metadata,"
                 " '$.aliases', json_array('Telescope', ?)) WHERE name = 'BRASS TELESCOPE'",
                 [EVIL_NAME, EVIL_DESC, "<i>alias</i>"])
    conn.commit()
    conn.close()
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    r = cli("lock-all", "--allow-placeholder", "--yes", "-p", styled)
    assert r.exit_code == 0, r.output
    return styled


def _sheet(cli, root: Path, out: Path, *extra: str) -> Path:
    r = cli("export", "--format", "html", "--out", out, *extra, "-p", root)
    assert r.exit_code == 0, r.output
    assert out.resolve().as_uri() in r.stdout
    return out / "index.html"


def test_sheet_is_self_contained(locked, cli, tmp_path):
    index = _sheet(cli, locked, tmp_path / "sheet")
    html = index.read_text(encoding="utf-8")
    page = _parse(index)
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//|file:|/)", html, re.I)
    assert not any(t == "link" for t, _ in page.tags)  # CSS is inline
    srcs = [a["src"] for t, a in page.tags if t == "img"]
    assert len(srcs) == 4 and all(s.startswith("images/") for s in srcs)
    assert sorted(Path(s).name for s in srcs) == sorted(p.name for p in (index.parent / "images").iterdir())
    for s in srcs:
        assert (index.parent / s).read_bytes() == next(
            (locked / "images").glob(Path(s).name)).read_bytes()
    # the folder still works after moving it anywhere
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(index.parent, moved)
    assert all((moved / s).is_file() for s in srcs)


def test_cards_grouped_by_type_with_their_details(locked, cli, tmp_path):
    page = _parse(_sheet(cli, locked, tmp_path / "sheet"))
    cards = [a for t, a in page.tags if t == "article" and "card" in (a.get("class") or "")]
    assert len(cards) == 4
    sections = [a["id"] for t, a in page.tags if t == "section" and a.get("id", "").startswith("type-")]
    assert sections == ["type-character", "type-location", "type-prop"]
    text = " ".join(page.text)
    assert "Characters (1)" in text and "Locations (2)" in text and "Props (1)" in text
    assert "coat: blue (scene 1) vs red (scene 5)" in text  # conflict notes
    assert text.count("locked") >= 4 and "Film noir" in text
    assert "scenes: 1" in text and "also: Telescope" in text
    swatches = [a for t, a in page.tags if t == "div" and a.get("class") == "swatch"]
    assert [s["title"] for s in swatches] == ["#0b0b0b", "#2e2e2e", "#6b6b6b", "#b5b5b5", "#f2f2f2"]


def test_everything_is_escaped(locked, cli, tmp_path):
    index = _sheet(cli, locked, tmp_path / "sheet")
    html = index.read_text(encoding="utf-8")
    page = _parse(index)
    assert EVIL_NAME not in html and EVIL_DESC not in html and "<i>alias</i>" not in html
    assert not any(t in ("script", "b", "i") for t, _ in page.tags)
    assert not any("onerror" in a for _, a in page.tags)
    assert [a["src"] for t, a in page.tags if t == "img" and a["src"] == "x"] == []
    text = "".join(page.text)
    assert EVIL_NAME in text and EVIL_DESC in text and "<i>alias</i>" in text  # shown, as text
    alts = [a["alt"] for t, a in page.tags if t == "img"]
    assert EVIL_NAME in alts


def test_draft_sheet_is_marked_and_shows_missing_images(styled, cli, tmp_path):
    add_assets(styled, TRIO)
    cli("generate", "MARA", "-p", styled)
    r = cli("export", "--format", "html", "--out", tmp_path / "sheet", "-p", styled)
    assert r.exit_code == 3 and not (tmp_path / "sheet").exists()
    page = _parse(_sheet(cli, styled, tmp_path / "sheet", "--draft"))
    text = " ".join(page.text)
    assert "DRAFT" in text and text.count("no image") == 2 and "unlocked" in text
    assert len([1 for t, _ in page.tags if t == "img"]) == 1


def test_rewrite_replaces_an_earlier_sheet_only(locked, cli, tmp_path):
    out = tmp_path / "sheet"
    _sheet(cli, locked, out)
    (out / "images" / "leftover.png").write_bytes(b"old")
    _sheet(cli, locked, out)
    assert not (out / "images" / "leftover.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj", "sheet"]  # no temp or old folders
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    before = table_dump(locked / "stage5.db")
    r = cli("export", "--format", "html", "--out", foreign, "-p", locked)
    assert r.exit_code == 2 and "not a stage5 contact sheet" in one_line_error(r)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert table_dump(locked / "stage5.db") == before


@pytest.mark.parametrize("where", ["proc", "file"])
def test_unwritable_sheet_folder(locked, cli, tmp_path, where):
    if where == "proc":
        out = Path("/proc/stage5-sheet")
    else:
        out = tmp_path / "plain"
        out.write_text("x")
    before = table_dump(locked / "stage5.db")
    r = cli("export", "--format", "html", "--out", out, "-p", locked)
    assert r.exit_code == 2 and f"cannot write {out}" in one_line_error(r)
    assert table_dump(locked / "stage5.db") == before
    if where == "file":
        assert out.read_text() == "x"


# ---- a real browser ------------------------------------------------------------------------

PROBE = """<script>
addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.cards = document.querySelectorAll("article.card").length;
});
</script></body>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False)


def _probe(sheet_dir: Path, tmp: Path) -> dict[str, int]:
    """Load a test-only copy of the page with a probe script; read what it wrote into the DOM."""
    html = (sheet_dir / "index.html").read_text(encoding="utf-8")
    check = sheet_dir / "probe.html"
    check.write_text(html.replace("</body>", PROBE), encoding="utf-8")
    try:
        done = _chromium(tmp, "--virtual-time-budget=3000", "--dump-dom", check.as_uri())
    finally:
        check.unlink()
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, f"no DOM from chromium: {done.stderr[-2000:]}"
    return {k: int(v) for k, v in re.findall(r'data-(\w+)="(\d+)"', body.group(1))}


@needs_chromium
@pytest.mark.slow
def test_chromium_renders_the_sheet_with_every_image(locked, cli, tmp_path):
    from PIL import Image

    sheet = _sheet(cli, locked, tmp_path / "sheet").parent
    shot = tmp_path / "shot.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000",
                     sheet.joinpath("index.html").as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # the images and text rendered
    assert _probe(sheet, tmp_path) == {"images": 4, "loaded": 4, "cards": 4}
    # the probe can fail: a broken image is not counted as loaded
    (sheet / "images" / sorted(p.name for p in (sheet / "images").iterdir())[0]).write_bytes(b"no")
    assert _probe(sheet, tmp_path) == {"images": 4, "loaded": 3, "cards": 4}
