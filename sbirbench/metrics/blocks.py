"""Metric values for a block of query rows, under either tie rule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .ranks import ranks_from_sorted, ranks_from_top, sklearn_terms, sort_rows, stable_order_ranks


@dataclass(frozen=True)
class Metric:
    """A parsed metric name: ``map`` or ``prec``, cut at ``k`` (None: all)."""

    name: str
    kind: str  # "map" or "prec"
    k: int | None  # None = all


def block_metrics(
    scores: torch.Tensor,
    cols: torch.Tensor,
    count: torch.Tensor,
    specs: list[Metric],
    ap: str,
    ties: str,
    *,
    hamming: bool,
) -> dict[str, np.ndarray]:
    """Metric values for each query row of a block, under the tie rule ``ties``."""
    if ties == "shared":
        return shared_tie_metrics(scores, cols, count, specs, ap)
    return index_tie_metrics(scores, cols, count, specs, ap, hamming=hamming)


def shared_tie_metrics(
    scores: torch.Tensor, cols: torch.Tensor, count: torch.Tensor, specs: list[Metric], ap: str
) -> dict[str, np.ndarray]:
    """Metric values with tied scores as shared thresholds.

    Per relevant item (sorted by score, ascending; padding -inf): the items scoring above
    it (``greater``) and its block of equal scores (``block``), and likewise among the
    relevant items. A cut at K keeps the fraction ``f = clip((K - greater) / block, 0, 1)``
    of a block; precision is taken at the block's end, or at the cut inside it.
    """
    n = scores.shape[1]
    r_max = cols.shape[1]
    valid = torch.arange(r_max, device=cols.device)[None, :] < count[:, None]
    needles = sort_rows(torch.where(valid, torch.gather(scores, 1, cols), -math.inf))
    sorted_scores = sort_rows(scores)
    padding = needles == -math.inf
    greater = (n - torch.searchsorted(sorted_scores, needles, right=True)).double()
    block = n - torch.searchsorted(sorted_scores, needles, right=False) - greater
    rel_greater = (r_max - torch.searchsorted(needles, needles, right=True)).double()
    rel_block = r_max - torch.searchsorted(needles, needles, right=False) - rel_greater
    norm = count.double()
    out: dict[str, np.ndarray] = {}
    for m in specs:
        k = n if m.k is None else min(m.k, n)
        fraction = ((k - greater) / block.clamp(min=1)).clamp(0, 1).masked_fill(padding, 0)
        if m.kind == "prec":
            value = fraction.sum(1) / k
        else:
            hits = rel_greater + rel_block * fraction
            seen = (greater + block * fraction).clamp(min=1e-12)
            precision = torch.where(fraction > 0, hits / seen, 0.0)
            if ap == "interpolated":  # the envelope over items scoring lower (earlier here)
                precision = torch.cummax(precision, dim=1).values
            value = (fraction * precision).sum(1) / norm.clamp(max=k).clamp(min=1)
        out[m.name] = value.cpu().numpy()
    return out


def index_tie_metrics(
    scores: torch.Tensor,
    cols: torch.Tensor,
    count: torch.Tensor,
    specs: list[Metric],
    ap: str,
    *,
    hamming: bool,
) -> dict[str, np.ndarray]:
    """Metric values under the gallery-index tie rule.

    The relevant items' scores are sorted first (padding as -inf), so their ranks come
    out in descending order: the entry at position p is the (r_max - p)-th best relevant
    item, padding ranks as n + 1 (beyond every cut), and the precision envelope
    ``max_{j' >= j}`` is a forward cumulative maximum.
    """
    n = scores.shape[1]
    r_max = cols.shape[1]
    valid = torch.arange(r_max, device=cols.device)[None, :] < count[:, None]
    rel_scores = torch.gather(scores, 1, cols)
    needles = sort_rows(torch.where(valid, rel_scores, -math.inf))
    ks = [min(m.k, n) for m in specs if m.k is not None]
    sklearn_map = ap == "sklearn" and any(m.kind == "map" for m in specs)
    sorted_scores = None
    if hamming:
        ranks = torch.gather(stable_order_ranks(scores, hamming=True), 1, cols)
        ranks = -sort_rows(-torch.where(valid, ranks, n + 1))
        if sklearn_map:
            sorted_scores = sort_rows(scores)
    elif sklearn_map or any(m.k is None for m in specs) or max(ks) * 4 > n:
        sorted_scores = sort_rows(scores)
        ranks = ranks_from_sorted(scores, sorted_scores, needles, rel_scores, cols, valid)
    else:
        ranks = ranks_from_top(scores, needles, rel_scores, cols, valid, max(ks))

    nth = torch.arange(r_max, 0, -1, device=ranks.device, dtype=torch.float64)[None, :]
    precision = nth / ranks
    norm = count.double()
    shared = (
        sklearn_terms(sorted_scores, needles, count)
        if sklearn_map and sorted_scores is not None
        else None
    )
    out: dict[str, np.ndarray] = {}
    for m in specs:
        k = n if m.k is None else min(m.k, n)
        if m.kind == "prec":
            value = (ranks <= k).sum(1).double() / k
        elif ap == "interpolated":
            hit = ranks <= k  # beyond the cut, and padding, are excluded
            envelope = torch.cummax(torch.where(hit, precision, 0.0), dim=1).values
            value = (envelope * hit).sum(1) / norm.clamp(max=k).clamp(min=1)
        else:
            assert shared is not None  # computed above whenever an sklearn mAP is asked
            terms, shared_rank = shared
            value = (terms * (shared_rank <= k)).sum(1) / norm.clamp(max=k).clamp(min=1)
        out[m.name] = value.cpu().numpy()
    return out


def class_means(values: np.ndarray, labels: np.ndarray, has_pos: np.ndarray) -> dict[int, float]:
    keep = has_pos
    classes, inverse = np.unique(labels[keep], return_inverse=True)
    sums = np.bincount(inverse, weights=values[keep], minlength=len(classes))
    counts = np.bincount(inverse, minlength=len(classes))
    return {int(c): float(s / n) for c, s, n in zip(classes, sums, counts, strict=True)}
