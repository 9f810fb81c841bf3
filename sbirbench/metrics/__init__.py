"""Retrieval metrics for ZS-SBIR (the conventions: :mod:`sbirbench.metrics.api`).

Names and conventions import without torch; ``retrieval_metrics`` loads it on first use.
"""

from typing import Any

from .names import AP_CONVENTIONS, SIMILARITIES, TIE_RULES, parse_metric

__all__ = ["AP_CONVENTIONS", "SIMILARITIES", "TIE_RULES", "parse_metric", "retrieval_metrics"]


def __getattr__(name: str) -> Any:
    if name == "retrieval_metrics":
        from .api import retrieval_metrics

        return retrieval_metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
