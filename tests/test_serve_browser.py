"""The review room in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium with the system driver: nothing is downloaded). The designer's flow end to end on a
bundled script: lock a style, extract, edit a description and see "saved", merge two cards,
generate all (placeholder), resolve a conflict, allow placeholders, watch "Lock all" enable, lock
all. A screenshot of the grid is written as a test artifact (and, with $STAGE5_SCREENSHOT_DIR,
copied there: that is how docs/serve.png is made)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None)
try:
    import selenium  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401

    MISSING = None
except ImportError as e:
    MISSING = f"{e.name} is not installed (pip install -e '.[serve,dev]')"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="headless Chromium and its driver are not installed (Debian: "
                              "apt-get install chromium chromium-driver)"),
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]

TOKEN = "browser-test-token"
SCRIPT = REPO / "examples" / "scripts" / "the_last_lamp.fountain"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(project):
    import uvicorn

    from stage5cli.serve.app import create_app

    (project / "the_last_lamp.fountain").write_bytes(SCRIPT.read_bytes())
    port = _free_port()
    app = create_app(project, token=TOKEN, host="127.0.0.1", port=port)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield project, f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1500",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    # the driver's path is given, so Selenium Manager never looks anything up
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "stage5.db")


def test_the_designers_flow_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root, url = server
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)

    def css(sel):
        return browser.find_element(By.CSS_SELECTOR, sel)

    def all_css(sel):
        return browser.find_elements(By.CSS_SELECTOR, sel)

    def click(el):
        """A real click, on the element scrolled to the middle (clear of the gate bar)."""
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()

    def reloaded_after(click):
        old = css("html")
        click()
        wait.until(lambda d: _stale(old))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def no_error():
        msg = css("#message")
        if msg.is_displayed() and "bad" in (msg.get_attribute("class") or ""):
            pytest.fail(f"the page reported: {msg.text}")

    browser.get(f"{url}/?token={TOKEN}")
    # (a) style first: nothing else is offered until one is locked
    assert not all_css("#assets") and css("#lock-all").get_attribute("disabled")
    reloaded_after(lambda: css('button[data-action="style-lock"][data-style="film-noir"]').click())
    no_error()
    assert "locked" in css("#style-badge").text

    # (b) extract the bundled script with the built-in extractor, with a progress bar
    assert css("#script").get_attribute("value") == "the_last_lamp.fountain"
    click(css('button[data-action="extract"]'))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "article.card")) > 3)
    no_error()
    cards = all_css("article.card")
    with _db(root) as conn:
        assert len(cards) == conn.execute("SELECT count(*) FROM project_assets").fetchone()[0]

    # (c) edit a description: it saves itself after 1 s idle
    ta = css("article.card textarea.description")
    aid = ta.get_attribute("data-id")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", ta)
    ta.clear()
    ta.send_keys("a tall keeper in an oilskin coat, lamp soot on his hands")
    state = css(f'.save-state[data-id="{aid}"]')
    wait.until(lambda d: state.text == "saved")
    with _db(root) as conn:
        assert conn.execute("SELECT description FROM project_assets WHERE id = ?",
                            [aid]).fetchone()[0] == "a tall keeper in an oilskin coat, lamp soot on his hands"

    # merge two cards of one type
    props = all_css('.grid[data-type="prop"] article.card')
    assert len(props) >= 2
    keep, fold = props[0].get_attribute("data-id"), props[1].get_attribute("data-id")
    for card in props[:2]:
        click(card.find_element(By.CSS_SELECTOR, "input.pick"))
    click(css("#merge-btn"))
    assert css("#merge-panel").is_displayed()
    browser.execute_script(f"document.getElementById('merge-target').value = '{keep}'")
    reloaded_after(lambda: click(css('button[data-action="merge-go"]')))
    no_error()
    with _db(root) as conn:
        assert conn.execute("SELECT count(*) FROM project_assets WHERE id = ?", [fold]).fetchone()[0] == 0
        assert conn.execute("SELECT command FROM events ORDER BY id DESC").fetchone()[0] == "merge"

    # generate all (placeholder backend), with progress, then every card has an image
    click(css('button[data-action="generate-all"]'))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.card")
               and not d.find_elements(By.CSS_SELECTOR, 'article.card[data-state="missing"]'))
    no_error()
    wait.until(lambda d: d.execute_script(  # the first image key is served and decodes
        "const i = document.querySelector('article.card img'); return i && i.complete && i.naturalWidth > 0"))

    # resolve every conflict with the offered text
    while all_css('#conflicts button[data-action="resolve"]'):
        box = css("#conflicts .conflict")
        reloaded_after(lambda b=box: click(b.find_element(By.CSS_SELECTOR, 'button[data-action="resolve"]')))
        no_error()
    assert "no unresolved conflicts" in css("#conflicts").text

    # the gate: placeholders block until allowed, like lock-all --allow-placeholder
    assert css("#lock-all").get_attribute("disabled")
    assert "placeholder" in css("#gate-reasons").text
    reloaded_after(lambda: css("#allow-placeholder").click())
    wait.until(lambda d: not d.find_element(By.ID, "lock-all").get_attribute("disabled"))
    shot = tmp_path / "serve.png"
    browser.execute_script("window.scrollTo(0, document.getElementById('assets').offsetTop - 60)")
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("STAGE5_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["STAGE5_SCREENSHOT_DIR"]) / "serve.png")
    reloaded_after(lambda: css("#lock-all").click())
    no_error()
    assert "stage 5 locked" in css("#gate-counts").text
    with _db(root) as conn:
        assert conn.execute("SELECT status FROM stage_state").fetchone()[0] == "locked"
        assert conn.execute("SELECT count(*) FROM project_assets WHERE locked = 0").fetchone()[0] == 0


def _stale(element) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.tag_name  # noqa: B018
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:  # Chromium also says it as "Node ... does not belong to the document"
        if "does not belong to the document" in str(e):
            return True
        raise
    return False
