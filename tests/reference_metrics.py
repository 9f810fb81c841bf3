"""Naive per-query reference implementations (the community's loops), for tests only."""

from __future__ import annotations

import numpy as np


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """The SAKE code's interpolated AP (VOC style), written as a loop."""
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    change = mrec[1:] != mrec[:-1]
    return float(np.sum((mrec[1:][change] - mrec[:-1][change]) * mpre[1:][change]))


def sake_ap(relevant_in_rank_order: np.ndarray, top: int | None = None) -> float:
    tp = relevant_in_rank_order.astype(bool)
    total, positives = len(tp), int(tp.sum())
    fp = ~tp
    if top is not None:
        top = min(top, total)
        tp, fp = tp[:top], fp[:top]
        positives = min(top, positives)
    if positives == 0:
        return float("nan")
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    return voc_ap(tp / positives, tp / (tp + fp))


def sake_prec(relevant_in_rank_order: np.ndarray, top: int) -> float:
    top = min(top, len(relevant_in_rank_order))
    return float(relevant_in_rank_order[:top].sum() / top)


def sklearn_like_ap(scores: np.ndarray, relevant: np.ndarray, top: int | None = None) -> float:
    """AP with shared thresholds for ties, optionally cut at rank ``top`` (loop)."""
    positives = int(relevant.sum())
    if positives == 0:
        return float("nan")
    cut = len(scores) if top is None else min(top, len(scores))
    total = 0.0
    for s in scores[relevant]:
        at_least = int((scores >= s).sum())
        if at_least <= cut:
            total += (relevant & (scores >= s)).sum() / at_least
    return total / min(cut, positives)


def shared_tie_metric(
    scores: np.ndarray, relevant: np.ndarray, kind: str, top: int | None, ap: str
) -> float:
    """One metric with tied scores as one block (a loop over the distinct scores): a cut
    inside a block keeps that fraction of it; precision at the block's end or the cut."""
    n, positives = len(scores), int(relevant.sum())
    cut = n if top is None else min(top, n)
    before = hits_before = 0.0
    weights, precisions, found = [], [], 0.0
    for value in np.unique(scores)[::-1]:
        block = scores == value
        size, hits = int(block.sum()), float(relevant[block].sum())
        fraction = min(max((cut - before) / size, 0.0), 1.0)
        if fraction > 0 and hits > 0:
            weights.append(hits * fraction)
            precisions.append((hits_before + hits * fraction) / (before + size * fraction))
            found += hits * fraction
        before, hits_before = before + size, hits_before + hits
    if kind == "prec":
        return found / cut
    if ap == "interpolated":
        precisions = [max(precisions[i:]) for i in range(len(precisions))]
    return float(np.dot(weights, precisions)) / min(cut, positives)


def reference_metrics(
    scores: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    metrics: list[str],
    ap: str,
    ties: str = "shared",
) -> dict[str, np.ndarray]:
    """Per-query values of every metric, by looping over queries (NaN: no positives).
    ``ties``: "shared" (tied scores form blocks) or "index" (a stable sort's order)."""
    out = {m: np.full(len(scores), np.nan) for m in metrics}
    for i, row in enumerate(scores):
        relevant = gallery_labels == query_labels[i]
        if not relevant.any():
            continue
        if ties == "shared":
            for m in metrics:
                kind, _, k = m.partition("@")
                out[m][i] = shared_tie_metric(
                    row, relevant, kind, None if k == "all" else int(k), ap
                )
            continue
        order = np.argsort(-row, kind="stable")  # ties: lower gallery index first
        ranked = relevant[order]
        for m in metrics:
            kind, _, k = m.partition("@")
            top = None if k == "all" else int(k)
            if kind == "prec":
                out[m][i] = sake_prec(ranked, top)
            elif ap == "interpolated":
                out[m][i] = sake_ap(ranked, top)
            else:
                out[m][i] = sklearn_like_ap(row, relevant, top)
    return out
