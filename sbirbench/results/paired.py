"""Paired comparisons of two leaderboard rows over the same queries.

Each run stores its per-query values of the headline metric (``per_query.json``). A row's
value for a query is the mean over its runs (seeds); the two rows' values are paired by
query file and compared with :func:`sbirbench.results.stats.paired_test`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbirbench.errors import UserError
from sbirbench.results.rows import Board, Row
from sbirbench.results.stats import PairedTest, paired_test

PER_QUERY = "per_query.json"


@dataclass(frozen=True)
class RowComparison:
    a: str
    b: str
    metric: str
    test: PairedTest
    runs: tuple[int, int]


def row_values(row: Row) -> tuple[str, dict[str, float]]:
    """The row's metric name and its per-query mean over runs (NaN-free queries only)."""
    if not row.run_dirs:
        raise UserError(f"row '{row.label}' has no run folders to read per-query values from")
    sums: dict[str, list[float]] = {}
    metric = ""
    for folder in row.run_dirs:
        path = Path(folder) / PER_QUERY
        if not path.is_file():
            raise UserError(
                f"{path} is missing (results older than per-query records cannot be paired)"
            )
        data = json.loads(path.read_text())
        metric = data["metric"]
        key = "reranked_values" if row.reranked else "values"
        if key not in data:
            raise UserError(f"{path} holds no per-query values of the re-ranked ranking")
        for query, value in zip(data["queries"], data[key], strict=True):
            if value is not None:
                sums.setdefault(query, []).append(value)
    complete = {q: float(np.mean(v)) for q, v in sums.items() if len(v) == len(row.run_dirs)}
    return metric, complete


def find_row(board: Board, name: str) -> Row:
    """The measured row of method ``name`` (or with that exact label)."""
    found = [r for r in board.rows if r.measured and (r.label == name or r.method == name)]
    if len(found) != 1:
        what = "no row" if not found else f"{len(found)} rows"
        raise UserError(f"paired comparison: {what} for '{name}' on {board.title}")
    return found[0]


def compare_rows(board: Board, a_name: str, b_name: str) -> RowComparison:
    """Row ``a`` against row ``b`` on the queries both have values for."""
    a, b = find_row(board, a_name), find_row(board, b_name)
    metric_a, values_a = row_values(a)
    metric_b, values_b = row_values(b)
    if metric_a != metric_b:
        raise UserError(f"paired comparison: {a_name} stores {metric_a}, {b_name} {metric_b}")
    queries = sorted(set(values_a) & set(values_b))
    test = paired_test([values_a[q] for q in queries], [values_b[q] for q in queries])
    return RowComparison(a_name, b_name, metric_a, test, (a.runs, b.runs))


def comparisons_markdown(items: list[RowComparison]) -> str:
    """The comparisons as a Markdown table."""
    lines = [
        "| comparison | metric | difference (a - b) | 95% CI (bootstrap over queries) | "
        "p (paired permutation) | queries | runs a / b |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in items:
        t = c.test
        lines.append(
            f"| {c.a} vs {c.b} | {c.metric} | {t.difference:+.4f} | "
            f"[{t.low:+.4f}, {t.high:+.4f}] | {_p(t)} | {t.queries} | "
            f"{c.runs[0]} / {c.runs[1]} |"
        )
    return "\n".join(lines)


def _p(test: PairedTest) -> str:
    floor = 1 / (test.resamples + 1)
    return f"< {2 * floor:.4f}" if test.p_value <= floor * 1.5 else f"{test.p_value:.4f}"
