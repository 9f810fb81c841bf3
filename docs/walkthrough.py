"""The README's walkthrough, run as a new user would, writing its screenshots.

    python docs/walkthrough.py [--work DIR]

Runs each step's one command in a fresh folder (train on the embedded data set, export
its test photos as a folder, index it, search with a sketch, open the demo, write the
HTML report and leaderboard), and writes docs/images/walkthrough-*.svg (the terminal,
rendered by rich) and walkthrough-*.png (the pages, in headless Chromium). Needs the
[demo] extra, selenium, and Debian's chromium and chromium-driver. About 6 minutes on a
2-core CPU, most of it the training run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from rich.text import Text

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
sys.path.insert(0, str(REPO))
from tests.browser import chromium, draw_strokes, serving, wait_until  # noqa: E402
from tests.test_browser import HOUSE  # noqa: E402


def terminal(name: str, command: str, work: Path, keep: int = 14) -> str:
    """Run ``command`` in ``work``; save its terminal (the last ``keep`` lines) as SVG."""
    wide = {**os.environ, "COLUMNS": "108"}  # rich wraps a pipe's lines at 80 otherwise
    done = subprocess.run(command, shell=True, cwd=work, capture_output=True, text=True, env=wide)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed:\n{done.stderr}")
    lines = (done.stderr + done.stdout).rstrip().splitlines()
    shown = (["..."] if len(lines) > keep else []) + lines[-keep:]
    console = Console(record=True, width=110, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(Text("$ " + command, style="bold green"))
    console.print(Text("\n".join(shown)))
    console.save_svg(str(IMAGES / f"walkthrough-{name}.svg"), title="sbirbench")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="Folder to work in (default: a temporary one).")
    work = parser.parse_args().work or Path(tempfile.mkdtemp(prefix="sbirbench-walkthrough-"))
    work.mkdir(parents=True, exist_ok=True)
    IMAGES.mkdir(parents=True, exist_ok=True)
    print(f"working in {work}")
    terminal("1-train", "sbirbench run pskd --dataset synthetic", work)
    run = next((work / "runs" / "synthetic" / "pskd").iterdir()).relative_to(work)
    terminal("2-export", "sbirbench data export --dataset synthetic --out my-photos", work)
    terminal("3-index", f"sbirbench index --run {run} --photos my-photos", work)
    subprocess.run(
        shlex.split("sbirbench data export --dataset synthetic --modality sketch --out sketches"),
        cwd=work, check=True, capture_output=True,
    )  # fmt: skip
    sketch = sorted((work / "sketches").rglob("*.png"))[0].relative_to(work)
    index = f"{run}/index-my-photos.npz"
    terminal("4-search", f"sbirbench search --index {index} {sketch} -k 8 --grid top8.png", work)
    (IMAGES / "walkthrough-4-grid.png").write_bytes((work / "top8.png").read_bytes())
    for command in (f"sbirbench report {run} --html",
                    "sbirbench leaderboard --format html > leaderboard.html"):  # fmt: skip
        subprocess.run(command, shell=True, cwd=work, check=True, capture_output=True)
    browser = chromium(width=1280, height=900)
    try:
        demo_screenshot(browser, work, index)
        browser.set_window_size(1100, 1300)
        browser.get((work / run / "report" / "index.html").as_uri())
        browser.save_screenshot(str(IMAGES / "walkthrough-6-report.png"))
        browser.set_window_size(1100, 320)
        browser.get((work / "leaderboard.html").as_uri())
        browser.save_screenshot(str(IMAGES / "walkthrough-7-leaderboard.png"))
    finally:
        browser.quit()
    for picture in IMAGES.glob("walkthrough-*.png"):  # 256 colours: a third of the bytes
        with Image.open(picture) as image:
            small = image.convert("RGB").quantize(256)
        small.save(picture, optimize=True)
    print(f"wrote the screenshots to {IMAGES}")


def demo_screenshot(browser: Any, work: Path, index: str) -> None:
    from selenium.webdriver.common.by import By

    url = "http://127.0.0.1:7860/"
    demo = subprocess.Popen(shlex.split(f"sbirbench demo --index {index} -k 8"), cwd=work)
    try:
        wait_until(lambda: serving(url), 120, "the demo")
        browser.get(url)
        wait_until(lambda: browser.find_elements(By.ID, "search"))
        browser.find_element(By.CSS_SELECTOR, "#sketch button[aria-label=Brush]").click()
        draw_strokes(browser, "#sketch canvas", HOUSE)
        browser.find_element(By.ID, "search").click()
        wait_until(lambda: browser.find_element(By.ID, "status").text.startswith("Top"))
        time.sleep(2)  # the thumbnails
        browser.save_screenshot(str(IMAGES / "walkthrough-5-demo.png"))
    finally:
        demo.terminate()
        demo.wait(30)


if __name__ == "__main__":
    main()
