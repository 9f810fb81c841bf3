"""The pages in a real browser: the drawing demo (strokes on the canvas, Search, result
images with scores) and the HTML leaderboard (a column sort and a link to a run's
report). Skipped with a reason without Chromium, chromedriver, selenium or gradio."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sbirbench.cli import main

from .browser import chromium, draw_strokes, serving, wait_until
from .cli_helpers import SMALL, only_run, spawn
from .test_search import photo_folder

#: A drawing: a house, as three strokes (offsets from the canvas centre, in pixels).
HOUSE = [[(-60, 60), (-60, -10), (60, -10), (60, 60), (-60, 60)], [(-70, -5), (0, -70), (70, -5)],
         [(-10, 60), (-10, 20), (10, 20), (10, 60)]]  # fmt: skip


def cli(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code in (0, None), f"sbirbench {' '.join(args)} exited with {exc.code}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two trained runs (ce and triplet, one epoch each) with their HTML reports, and an
    index of a photo folder built with the first."""
    root = tmp_path_factory.mktemp("browser")
    for method in ("ce", "triplet"):
        cli("run", method, "--dataset", "synthetic", "--epochs", "1", *SMALL,
            "--out", str(root / "runs"))  # fmt: skip
    ce = only_run(root / "runs")
    for run in (root / "runs" / "synthetic").glob("*/*"):
        cli("report", str(run), "--html")
    folder, _ = photo_folder(root, count=20)
    cli("index", "--run", str(ce), "--photos", str(folder), "--out", str(root / "index.npz"))
    return root


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_drawing_on_the_demo_page_shows_the_photos_found(runs, browser):
    pytest.importorskip("gradio", reason="needs the [demo] extra: pip install -e '.[demo]'")
    from selenium.webdriver.common.by import By

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    demo = subprocess.Popen(
        [sys.executable, "-m", "sbirbench", "demo", "--index", str(runs / "index.npz"),
         "--port", str(port), "-k", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: serving(url) or demo.poll() is not None, 120, "the demo to serve")
        assert demo.poll() is None, demo.stdout.read() if demo.stdout else ""
        browser.get(url)
        search = wait_until(lambda: browser.find_elements(By.ID, "search"), what="the page")
        search[0].click()  # nothing drawn yet
        status = lambda: browser.find_element(By.ID, "status").text  # noqa: E731
        assert wait_until(status, what="the status line") == "Draw a sketch first."
        browser.find_element(By.CSS_SELECTOR, "#sketch button[aria-label=Brush]").click()
        draw_strokes(browser, "#sketch canvas", HOUSE)
        browser.find_element(By.ID, "search").click()
        wait_until(lambda: status().startswith("Top"), what="the search results")
        assert status() == "Top 6 of 20 photos."
        images = browser.find_elements(By.CSS_SELECTOR, "#results img")
        assert len(images) == 6
        loaded = "return arguments[0].complete && arguments[0].naturalWidth > 0"
        wait_until(lambda: all(browser.execute_script(loaded, i) for i in images), what="images")
        captions = [e.get_attribute("textContent").split() for e in
                    browser.find_elements(By.CSS_SELECTOR, "#results .caption-label")]  # fmt: skip
        assert len(captions) == 6
        scores = [float(score) for score, _ in captions]
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
        assert all((runs / "photos" / name).is_file() for _, name in captions)
    finally:
        demo.terminate()
        demo.wait(30)


def test_the_leaderboard_page_sorts_and_links_to_run_reports(runs, browser, tmp_path):
    from selenium.webdriver.common.by import By

    board = spawn("leaderboard", "--runs", str(runs / "runs"), "--format", "html")
    assert board.code == 0, board.err
    page = tmp_path / "leaderboard.html"
    page.write_text(board.out)
    browser.get(page.as_uri())
    table = browser.find_element(By.CSS_SELECTOR, "table.sortable")
    headers = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
    column = headers.index("map@all")

    def values() -> list[float]:
        cells = [row.find_elements(By.TAG_NAME, "td")[column] for row in
                 table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # fmt: skip
        return [
            float(c.get_attribute("data-value")) for c in cells if c.get_attribute("data-value")
        ]

    assert len(set(values())) >= 2  # ce and triplet, apart: a sort can show
    table.find_elements(By.TAG_NAME, "th")[column].click()
    assert values() == sorted(values(), reverse=True)
    table.find_elements(By.TAG_NAME, "th")[column].click()
    assert values() == sorted(values())
    link = browser.find_element(By.CSS_SELECTOR, "table.sortable a")
    run_id = link.text
    link.click()
    wait_until(lambda: run_id in browser.title, what="the run's report page")
    result = json.loads(next(Path(runs / "runs").rglob(f"{run_id}/result.json")).read_text())
    body = browser.find_element(By.TAG_NAME, "body").text
    assert f"{result['metrics']['map@all']:.4f}" in body
    pictures = browser.find_elements(By.TAG_NAME, "img")
    assert pictures and all(browser.execute_script(
        "return arguments[0].naturalWidth > 0", p) for p in pictures)  # fmt: skip
