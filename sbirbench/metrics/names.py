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


_ACCURACY = re.compile(r"^acc@([1-9][0-9]*)$")


def is_accuracy(name: str) -> bool:
    """Whether ``name`` is a fine-grained metric (``acc@K``)."""
    return bool(_ACCURACY.match(name))


def parse_any_metric(name: str) -> str:
    """A retrieval metric (:func:`parse_metric`) or a fine-grained one, ``acc@K``: the
    share of queries whose own photo ranks in the top K (docs/protocols.md)."""
    canonical = name.strip().lower()
    if is_accuracy(canonical):
        return canonical
    try:
        return parse_metric(name)
    except UserError:
        raise UserError(
            f"unknown metric '{name}'; use map@all, map@K or prec@K, or acc@K for the "
            "fine-grained protocol (K a positive integer)"
        ) from None
