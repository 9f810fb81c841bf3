"""A real browser for the page tests: Debian's ``chromium`` driven by selenium through
``chromedriver``. Tests that need it skip with a reason when either is missing
(``.ci/run`` installs both)."""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium under selenium, or a skip naming what is missing."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="needs selenium (the [test] extra)"
    )
    from selenium.webdriver.chrome.service import Service

    binary = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("needs a browser: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "the page") -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def draw_strokes(driver: Any, canvas_selector: str, strokes: list[list[tuple[int, int]]]) -> None:
    """Draw polylines on a canvas with the mouse; points are offsets from its centre."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_elements(By.CSS_SELECTOR, canvas_selector)[-1]  # the top layer
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        actions = ActionChains(driver).move_to_element_with_offset(canvas, x, y).click_and_hold()
        for nx, ny in rest:
            actions = actions.move_by_offset(nx - x, ny - y)
            x, y = nx, ny
        actions.release().perform()
