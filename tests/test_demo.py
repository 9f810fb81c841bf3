"""The drawing demo without a browser: what it takes from the sketch pad, that its
results are `sbirbench search`'s for the same drawing, and its one-line errors.
(tests/test_browser.py draws on the page in Chromium.)"""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sbirbench.search.demo import drawn_sketch, find_photos
from sbirbench.search.searcher import Searcher, search

from .cli_helpers import SMALL, invoke, only_run
from .test_search import photo_folder


def drawing(size: int = 64) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).line([(8, 8), (50, 40), (20, 56)], fill="black", width=3)
    return image


def test_a_blank_canvas_is_no_sketch_and_a_drawing_is_taken_as_drawn():
    blank = Image.new("RGB", (64, 64), "white")
    assert drawn_sketch(None) is None and drawn_sketch({"composite": None}) is None
    assert drawn_sketch({"composite": blank}) is None
    taken = drawn_sketch({"composite": np.asarray(drawing())})  # numpy, as gradio may send
    assert taken is not None and np.array_equal(np.asarray(taken), np.asarray(drawing()))


def test_the_page_shows_what_search_finds_for_the_same_drawing(tmp_path, capsys):
    assert invoke(capsys, "run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL,
                  "--out", str(tmp_path / "runs")).code == 0  # fmt: skip
    folder, _ = photo_folder(tmp_path)
    index = tmp_path / "index.npz"
    assert invoke(capsys, "index", "--run", str(only_run(tmp_path / "runs")),
                  "--photos", str(folder), "--out", str(index)).code == 0  # fmt: skip
    drawing().save(tmp_path / "drawn.png")
    expected = search(index, tmp_path / "drawn.png", k=5)
    shown, status = find_photos(Searcher(index), {"composite": drawing()}, 5)
    assert [path for path, _ in shown] == [path for path, _ in expected]
    for (_, caption), (path, score) in zip(shown, expected, strict=True):
        assert caption.split()[0] == f"{score:+.3f}" and path.endswith(caption.split()[1])
    assert status == "Top 5 of 12 photos."
    assert find_photos(Searcher(index), {"composite": None}, 5) == ([], "Draw a sketch first.")
    # the port is taken: one line
    pytest.importorskip("gradio", reason="needs the [demo] extra")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        outcome = invoke(capsys, "demo", "--index", str(index), "--port", port)
    assert outcome.code == 2 and outcome.err.strip().splitlines()[-1].startswith(
        f"error: cannot serve on 127.0.0.1:{port}"
    )


def test_without_gradio_the_demo_is_one_line_naming_pip(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)
    outcome = invoke(capsys, "demo", "--index", str(tmp_path / "none.npz"))
    assert outcome.code == 2
    assert (
        outcome.err.strip() == "error: sbirbench demo needs gradio: pip install 'sbirbench[demo]'"
    )
