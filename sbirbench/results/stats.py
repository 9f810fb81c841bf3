"""Statistics for result tables: intervals over seeds and paired tests over queries.

numpy only: scipy is not a dependency of sbirbench, so the few Student-t quantiles the
intervals need are tabulated below (two-sided 95%, from any t table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: t_{0.975, dof} for dof = 1..30; beyond that the normal quantile 1.96 is within 2%.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@dataclass(frozen=True)
class Interval:
    """A mean and the half-width of its 95% interval (None for a single value)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def t_interval(values: Sequence[float]) -> Interval:
    """Mean and Student-t 95% interval over independent runs (seeds)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = float(np.mean(values))
    if n == 1:
        return Interval(mean, None, 1)
    sd = float(np.std(values, ddof=1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return Interval(mean, t * sd / math.sqrt(n), n)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison over queries: mean difference (a - b), its bootstrap 95%
    interval, and the two-sided p-value of a sign-flip permutation test."""

    difference: float
    low: float
    high: float
    p_value: float
    queries: int
    resamples: int


def paired_test(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, seed: int = 0
) -> PairedTest:
    """Compare per-query values of two systems on the same queries (NaNs dropped in pairs).

    Under the null hypothesis the sign of each query's difference is arbitrary, so the
    p-value is the share of random sign flips whose mean difference is at least as far
    from zero as the observed one (with the observed one counted, so p > 0).
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("the two systems have different numbers of queries")
    keep = ~(np.isnan(x) | np.isnan(y))
    d = x[keep] - y[keep]
    if len(d) == 0:
        raise ValueError("no query has a value in both systems")
    rng = np.random.default_rng(seed)
    observed = float(d.mean())
    boot = np.empty(resamples)
    flips = np.empty(resamples)
    block = max(1, 2_000_000 // len(d))  # bound memory: (block x queries) at a time
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        boot[start:stop] = d[rng.integers(0, len(d), (stop - start, len(d)))].mean(1)
        signs = rng.integers(0, 2, (stop - start, len(d))) * 2 - 1
        flips[start:stop] = (signs * d).mean(1)
    extreme = int((np.abs(flips) >= abs(observed) - 1e-15).sum())
    low, high = np.quantile(boot, [0.025, 0.975])
    return PairedTest(
        observed, float(low), float(high), (extreme + 1) / (resamples + 1), len(d), resamples
    )


def chance_level(
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    metrics: Sequence[str],
    *,
    ap: str = "interpolated",
    draws: int = 10,
    max_queries: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Expected metrics of a random ranking of this gallery: the mean over ``draws``
    draws (at most ``max_queries`` queries, sampled, per draw). Each draw ranks by the dot
    product of independent Gaussian features, so every gallery order is equally likely
    for every query."""
    from sbirbench.metrics import retrieval_metrics

    rng = np.random.default_rng(seed)
    q = np.asarray(query_labels)
    g = np.asarray(gallery_labels)
    totals = dict.fromkeys(metrics, 0.0)
    for _ in range(draws):
        picked = q if len(q) <= max_queries else rng.choice(q, max_queries, replace=False)
        queries = rng.standard_normal((len(picked), 16), dtype=np.float32)
        gallery = rng.standard_normal((len(g), 16), dtype=np.float32)
        result = retrieval_metrics(
            queries, picked, gallery, g, metrics=metrics, ap=ap, similarity="dot", distributed=False
        )
        for m in metrics:
            totals[m] += result[m] / draws
    return totals
