"""Metric names and convention choices (no torch: the CLI and benchmarks.toml use them)."""

from __future__ import annotations

import re

from sbirbench.errors import UserError

AP_CONVENTIONS = ("interpolated", "sklearn")
SIMILARITIES = ("cosine", "dot", "euclidean", "hamming")
TIE_RULES = ("shared", "index")
_METRIC = re.compile(r"^(map|prec)@(all|[1-9][0-9]*)$")


def parse_metric(name: str) -> str:
    """Canonical lower-case metric name (``map@all``, ``map@K``, ``prec@K``)."""
    canonical = name.strip().lower()
    if not _METRIC.match(canonical) or canonical == "prec@all":
        raise UserError(
            f"unknown metric '{name}'; use map@all, map@K or prec@K (K a positive integer)"
        )
    return canonical
