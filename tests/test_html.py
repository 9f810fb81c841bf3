"""HTML pages: a run's self-contained report and the sortable leaderboard linking to it;
the report's precision-recall curve against a plain loop."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
import torch

from sbirbench.report import pr_curve

from .cli_helpers import SMALL, invoke, only_run


class Collect(HTMLParser):
    """Tags, links, images and table cells of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.sortable = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "table" and "sortable" in (attrs.get("class") or ""):
            self.sortable += 1


def test_precision_recall_curve_is_the_interpolated_mean_of_a_plain_loop():
    torch.manual_seed(0)
    q, g = torch.randn(7, 5), torch.randn(20, 5)
    ql, gl = torch.randint(0, 3, (7,)), torch.randint(0, 3, (20,))
    levels, precision = pr_curve(q, ql, g, gl, points=5, chunk=3)
    sim = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(g, dim=-1).T
    expected, used = [0.0] * 5, 0
    for i in range(7):
        order = sim[i].argsort(descending=True).tolist()
        relevant = [int(gl[j] == ql[i]) for j in order]
        total = sum(relevant)
        if not total:
            continue
        used += 1
        points = []
        hits = 0
        for rank, rel in enumerate(relevant, 1):
            hits += rel
            points.append((hits / total, hits / rank))
        for k, level in enumerate(levels):
            expected[k] += max(p for r, p in points if r >= level - 1e-9)
    assert precision == pytest.approx([e / used for e in expected], abs=1e-6)


def test_a_run_page_and_a_leaderboard_page_link_up(tmp_path, capsys):
    assert invoke(capsys, "run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL,
                  "--out", str(tmp_path / "runs")).code == 0  # fmt: skip
    run = only_run(tmp_path / "runs")
    outcome = invoke(capsys, "report", str(run), "--html")
    assert outcome.code == 0, outcome.err
    page = (run / "report" / "index.html").read_text()
    parsed = Collect()
    parsed.feed(page)
    assert len(parsed.images) == 4 and all(
        s.startswith("data:image/png;base64,") for s in parsed.images
    )
    result = json.loads((run / "result.json").read_text())
    assert f"{result['metrics']['map@all']:.4f}" in page and result["config_hash"] in page
    assert parsed.sortable == 2  # metrics and per-class tables
    board = invoke(capsys, "leaderboard", "--runs", str(tmp_path / "runs"), "--format", "html")
    assert board.code == 0, board.err
    listing = Collect()
    listing.feed(board.out)
    assert listing.sortable == 1 and "<script>" in board.out
    (link,) = listing.links
    assert link == f"{run.as_posix()}/report/index.html"
    assert re.search(r'data-value="0\.\d+"', board.out)  # numeric sort keys
