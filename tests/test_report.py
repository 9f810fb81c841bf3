"""Reports: PNG files of the expected size and number of tiles, and a Markdown page."""

from __future__ import annotations

import json

from PIL import Image

from sbirbench.report import write_report

from .cli_helpers import SMALL, invoke, only_run

GREEN, RED = (40, 170, 60), (220, 40, 40)


def test_report_of_a_synthetic_run(tmp_path, capsys):
    outcome = invoke(
        capsys,
        "run",
        "ce",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--epochs",
        "2",
        *SMALL,
        "--report",
    )
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    folder = run / "report"
    result = json.loads((run / "result.json").read_text())

    grid = Image.open(folder / "retrieval.png").convert("RGB")
    tile, border, gap, label_w, rows, top = 64, 4, 6, 150, 5 * 2, 10
    cell = tile + 2 * border
    assert grid.size == (label_w + cell + 3 * gap + top * (cell + gap), rows * (cell + gap) + gap)
    colours = []
    for r in range(rows):
        y = gap + r * (cell + gap) + 1
        for c in range(top):
            x = label_w + cell + 3 * gap + c * (cell + gap) + 1
            colours.append(grid.getpixel((x, y)))
    assert len(colours) == 100 and set(colours) <= {GREEN, RED}
    assert GREEN in colours

    bars = Image.open(folder / "per_class_ap.png")
    assert bars.size == (760, 40 + 22 * 5 + 20)
    assert Image.open(folder / "training.png").size == (760, 380)
    page = (folder / "report.md").read_text()
    for link in ("retrieval.png", "per_class_ap.png", "training.png"):
        assert f"]({link})" in page
    assert result["run_id"] in page and result["config_hash"] in page
    assert f"{result['metrics']['map@all']:.4f}" in page

    again = write_report(run, per_class=1, tile=32)  # the features come from the cache
    assert Image.open(again.parent / "retrieval.png").size[1] == 5 * (32 + 8 + 6) + 6
