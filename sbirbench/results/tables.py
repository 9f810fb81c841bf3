"""Leaderboard boards as text: rich, github (Markdown), csv, json, latex.

A measured cell is ``mean ± h`` where ``h`` is the half-width of the 95% Student-t
interval over the row's runs (seeds); a single run shows its value alone. The best
measured mean per column is bold; published rows are marked †; the chance row and the
published rows are not candidates for best.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from sbirbench.errors import UserError
from sbirbench.results.rows import PUBLISHED_MARK

if TYPE_CHECKING:  # the command line imports FORMATS; numpy stays out of its start-up
    from sbirbench.results.rows import Board, Row
    from sbirbench.results.stats import Interval

FORMATS = ("rich", "github", "csv", "json", "latex", "html")
NOTE = (
    "mean ± half-width of the 95% t-interval over seeds; time: mean wall time per run "
    "(training + evaluation)"
)


def cell_text(value: Interval | None) -> str:
    if value is None:
        return "-"
    if value.half_width is None:
        return f"{value.mean:.3f}"
    return f"{value.mean:.3f} ± {value.half_width:.3f}"


def _time(row: Row) -> str:
    if row.seconds is None:
        return ""
    return f"{row.seconds / 60:.1f} min" if row.seconds >= 90 else f"{row.seconds:.0f} s"


def _cells(board: Board, row: Row, bold: tuple[str, str]) -> list[str]:
    best = board.best()
    cells = []
    for m in board.metrics:
        text = cell_text(row.values.get(m))
        if row.measured and m in best and m in row.values and row.values[m].mean == best[m]:
            text = f"{bold[0]}{text}{bold[1]}"
        cells.append(text)
    return cells


def render(boards: list[Board], fmt: str) -> str:
    """The boards as text in ``fmt`` (rich renders to a plain-text string here)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([_board_json(b) for b in boards], indent=2)
    if fmt == "csv":
        return _csv(boards)
    if fmt == "rich":
        return _render_rich(boards)
    if fmt == "html":  # a page, not a table: sbirbench.report.html (the CLI calls it)
        raise UserError("the html format is a page: sbirbench.report.html.leaderboard_page")
    from tabulate import tabulate

    chunks = []
    bold = ("**", "**") if fmt == "github" else ("\\textbf{", "}")
    for b in boards:
        rows = [[r.label, r.runs or "", *_cells(b, r, bold), _time(r)] for r in b.rows]
        table = tabulate(
            rows,
            headers=["method", "runs", *b.metrics, "time"],
            tablefmt="github" if fmt == "github" else "latex_raw",
            disable_numparse=True,
        )
        if fmt == "latex":
            table = table.replace("±", r"$\pm$")
        note = repeats_note(b)
        if note:
            table += ("\n\n" if fmt == "github" else "\n% ") + note
        chunks.append((f"### {b.title}\n\n" if fmt == "github" else f"% {b.title}\n") + table)
    published = any(r.published for b in boards for r in b.rows)
    note = ""
    if fmt == "github":
        note = f"\n\n{NOTE}" + (
            f"; {PUBLISHED_MARK} published result (benchmarks.toml)" if published else ""
        )
    return "\n\n".join(chunks) + note


def repeats_note(board: Board) -> str:
    """The runs left out as repeats of a configuration and seed already in a row."""
    if not board.duplicates:
        return ""
    listed = "; ".join(f"{d.dropped} (seed {d.seed}, kept {d.kept})" for d in board.duplicates)
    return f"Repeats of a configuration and seed, left out of the means: {listed}"


def _board_json(b: Board) -> dict:
    return {
        "duplicates": [
            {"kept": d.kept, "dropped": d.dropped, "seed": d.seed} for d in b.duplicates
        ],
        "benchmark": b.benchmark,
        "version": b.version,
        "metrics": b.metrics,
        "rows": [
            {
                "label": r.label,
                "runs": r.runs,
                "published": r.published,
                "chance": r.chance,
                "run_ids": r.run_ids,
                "seconds": r.seconds,
                **{
                    m: {"mean": v.mean, "ci95": [v.low, v.high], "std": r.std.get(m)}
                    for m, v in r.values.items()
                },
            }
            for r in b.rows
        ],
    }


def _csv(boards: list[Board]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "benchmark",
            "version",
            "method",
            "runs",
            "published",
            "chance",
            "metric",
            "mean",
            "ci95_low",
            "ci95_high",
            "std",
            "seconds",
        ]
    )
    for b in boards:
        for r in b.rows:
            for m in b.metrics:
                if m in r.values:
                    v, std = r.values[m], r.std.get(m)
                    writer.writerow(
                        [
                            b.benchmark,
                            b.version,
                            r.label,
                            r.runs,
                            r.published,
                            r.chance,
                            m,
                            f"{v.mean:.6f}",
                            "" if v.low is None else f"{v.low:.6f}",
                            "" if v.high is None else f"{v.high:.6f}",
                            "" if std is None else f"{std:.6f}",
                            "" if r.seconds is None else f"{r.seconds:.1f}",
                        ]
                    )
    return buffer.getvalue()


def _render_rich(boards: list[Board]) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(record=True, width=140, file=io.StringIO())
    for b in boards:
        table = Table(title=b.title, title_justify="left", caption=NOTE, caption_justify="left")
        table.add_column("method")
        table.add_column("runs", justify="right")
        for m in b.metrics:
            table.add_column(m, justify="right")
        table.add_column("time", justify="right")
        for r in b.rows:
            table.add_row(
                escape(r.label),
                str(r.runs or ""),
                *_cells(b, r, ("[bold]", "[/bold]")),
                _time(r),
                style=None if r.measured else "dim",
            )
        console.print(table)
        if b.duplicates:
            console.print(repeats_note(b), style="dim")
    return console.export_text(styles=True)
