"""Quoted against reproduced (``sbirbench leaderboard --reference``): each published row
of a benchmark beside the measured rows of the same method, with the difference.

A published row's method ("PSKD", "ZSE-SBIR") matches a measured row whose method name
is the same ignoring case, spaces, ``-`` and ``_`` ("pskd", "zse_sbir"), and a quoted
second-stage ranking (``reranked = true``, over every pair) matches the measured rows
re-ranked over every pair, never a top-k re-ranking. Published rows
appear only on the boards of their own benchmark version, never beside a subset's rows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sbirbench.errors import UserError

if TYPE_CHECKING:
    from sbirbench.results.rows import Board, Row

REFERENCE_FORMATS = ("rich", "github", "json")
NOT_RUN = "not reproduced here"


def method_key(name: str) -> str:
    """A method name as published rows and plugins are matched."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _quoted_method(row: Row) -> str:
    return row.label.split(" (", 1)[0]


def reference_rows(board: Board) -> list[dict[str, Any]]:
    """One entry per published row: its values, and each measured row of its method."""
    measured = [r for r in board.rows if r.measured]
    out = []
    for quoted in (r for r in board.rows if r.published):
        method = _quoted_method(quoted)
        matches = [
            r
            for r in measured
            # A quoted second ranking scored every pair: a top-k row is another protocol.
            if method_key(r.method) == method_key(method) and r.rerank_k == quoted.rerank_k
        ]
        out.append(
            {
                "quoted": quoted.label.removesuffix(" †").strip(),
                "values": {m: v.mean for m, v in quoted.values.items()},
                "reproduced": [
                    {
                        "label": r.label,
                        "runs": r.runs,
                        "values": {
                            m: {"mean": v.mean, "half_width": v.half_width}
                            for m, v in r.values.items()
                        },
                    }
                    for r in matches
                ],
            }
        )
    return out


def _difference(reproduced: dict[str, Any], quoted: float | None) -> str:
    if quoted is None:
        return "-"
    half = reproduced["half_width"]
    cell = f"{reproduced['mean']:.3f}" + (f" ± {half:.3f}" if half is not None else "")
    return f"{cell} ({reproduced['mean'] - quoted:+.3f})"


def render_reference(boards: list[Board], fmt: str) -> str:
    """The quoted rows beside the reproduced ones, one table per benchmark."""
    from tabulate import tabulate

    if fmt not in REFERENCE_FORMATS:
        raise UserError(f"--reference is shown as {', '.join(REFERENCE_FORMATS)}, not {fmt}")
    entries = {board.title: (board, reference_rows(board)) for board in boards}
    entries = {title: pair for title, pair in entries.items() if pair[1]}
    if not entries:
        raise UserError(
            "no published numbers for the benchmarks of these results (a subset of a "
            "benchmark's data is never compared with them)"
        )
    if fmt == "json":
        return json.dumps({title: rows for title, (_, rows) in entries.items()}, indent=2)
    parts = []
    for title, (board, rows) in entries.items():
        table = []
        for entry in rows:
            quoted = entry["values"]
            table.append(
                [entry["quoted"], "quoted", *(_plain(quoted.get(m)) for m in board.metrics)]
            )
            for rep in entry["reproduced"] or [None]:
                if rep is None:
                    table.append(["", NOT_RUN, *("" for _ in board.metrics)])
                    continue
                cells = [
                    _difference(rep["values"][m], quoted.get(m)) if m in rep["values"] else "-"
                    for m in board.metrics
                ]
                table.append(["", f"{rep['label']}, {rep['runs']} run(s)", *cells])
        style = "github" if fmt == "github" else "simple"
        heading = f"### {title}" if fmt == "github" else title
        parts.append(heading + "\n\n" + tabulate(table, ["method", "row", *board.metrics], style))
    note = "reproduced: mean ± half-width of the 95% t-interval over seeds (difference to quoted)"
    return "\n\n".join(parts) + "\n\n" + note


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
