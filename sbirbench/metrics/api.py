"""``retrieval_metrics``: mAP@all, mAP@K and Prec@K for ZS-SBIR, exact and vectorised.

Conventions (each result records them; docs/protocol.md explains them with examples):

* Ranking: gallery items by descending similarity.
* Ties (``ties``): ``"shared"`` (the default) treats items of equal score as one block
  that shares a threshold: precision is taken at the end of the block, and where the
  cut at K falls inside a block, each of its items counts with the fraction of the block
  that fits (the expected value over the orders of the block). The result does not
  depend on the gallery's order. ``"index"`` orders tied items by gallery index, lower
  first (a stable sort), as the TVT/PSKD evaluation code does; it favours classes that
  come first in the gallery when scores tie, as hash codes often do.
* ``ap="interpolated"`` (the SAKE code, used by TVT/PSKD): precision at each rank is made
  monotone from the right and summed over the ranks where recall grows, times the recall
  step: ``AP = 1/R * sum_i max_{j>=i} j / k_j`` with ``k_j`` the rank of the j-th relevant
  item.
* ``ap="sklearn"``: sklearn's ``average_precision_score`` per query (no interpolation):
  ``AP = 1/R * sum_i #{relevant >= s_i} / #{all >= s_i}``; tied scores share one
  threshold under either tie rule.
* ``map@K``: the ranking is cut at ``K' = min(K, G)`` and AP is normalised by
  ``min(K', R)`` (SAKE). Under ``ties="index"`` with ``ap="sklearn"`` a relevant item
  counts when its shared threshold rank ``#{all >= s_i}`` is at most ``K'``.
* ``prec@K``: relevant items among the first ``K'`` divided by ``K'`` (SAKE: K unless the
  gallery is smaller than K).
* Queries without a relevant gallery item are excluded from every mean and counted in
  ``queries_without_positives``.

How: one matrix product per block of queries; the rows are sorted (numpy's SIMD sort on
the CPU, ``torch.sort`` on a GPU) and the relevant items located with a batched
``searchsorted``. Under ``ties="index"`` the few relevant items with tied scores get
their stable rank from one comparison pass, Prec@K and mAP@K alone need only the top K
(a partition), and hash codes go through a stable integer argsort. On the CPU, worker
threads take blocks of queries end to end; no Python loop runs over queries.

This package imports nothing of sbirbench but its error type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sbirbench.errors import UserError

from .blocks import Metric, block_metrics, class_means
from .names import AP_CONVENTIONS, SIMILARITIES, TIE_RULES, parse_metric
from .parallel import (
    all_reduce_rows,
    auto_chunk,
    dist_rank_world,
    pool,
    single_threaded_libraries,
)
from .ranks import scores_of

TIE_TEXT = {
    "shared": "shared threshold (tied items form one block; fractional at the cut)",
    "index": "gallery index (stable sort)",
}


def retrieval_metrics(
    query_feats: Any,
    query_labels: Any,
    gallery_feats: Any,
    gallery_labels: Any,
    *,
    metrics: Sequence[str] = ("map@all", "prec@100"),
    ap: str = "interpolated",
    similarity: str = "cosine",
    ties: str = "shared",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    per_query: bool = False,
    per_class: bool = False,
    distributed: bool = True,
    score_overrides: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Rank the gallery for every query and return the requested metrics.

    Features are ``(N, D)`` numpy arrays or torch tensors of any float dtype (computed in
    float32) or, for ``similarity="hamming"``, binary codes (bool, {0,1} or {-1,+1}).
    Labels are integer class ids. ``device`` defaults to the query tensor's device.
    Inside an initialised ``torch.distributed`` group (and ``distributed=True``), ranks
    split the queries and the sums are reduced exactly; every rank gets the result.

    Returns a dict: each metric as a float, ``queries`` (counted in the means),
    ``queries_without_positives``, the conventions used, and with ``per_query`` a dict of
    per-query arrays (NaN where excluded) and with ``per_class`` a dict of per-class means
    keyed by label. ``score_overrides`` = ``(columns, scores)``, two ``(Q, k)`` arrays,
    replaces the computed score of those gallery columns of each query (a second
    retrieval stage that re-orders each query's candidates).
    """
    specs = [_parse(m) for m in metrics]
    if ap not in AP_CONVENTIONS:
        raise UserError(f"unknown AP convention '{ap}'; use one of {', '.join(AP_CONVENTIONS)}")
    if similarity not in SIMILARITIES:
        raise UserError(f"unknown similarity '{similarity}'; use one of {', '.join(SIMILARITIES)}")
    if ties not in TIE_RULES:
        raise UserError(f"unknown tie rule '{ties}'; use one of {', '.join(TIE_RULES)}")
    dev = torch.device(device) if device is not None else _default_device(query_feats)
    query_labels = _labels(query_labels, "query_labels")
    gallery_labels = _labels(gallery_labels, "gallery_labels")
    q, g = _features(query_feats, gallery_feats, similarity, dev)
    if len(q) != len(query_labels) or len(g) != len(gallery_labels):
        raise UserError("features and labels differ in length")
    num_q, num_g = len(q), len(g)
    if num_g == 0:
        raise UserError("the gallery is empty")

    overrides = _overrides(score_overrides, num_q, num_g)
    relevant = _RelevantColumns(gallery_labels, dev)
    counts = relevant.counts_for(query_labels)
    rank, world = dist_rank_world(distributed)
    lo, hi = num_q * rank // world, num_q * (rank + 1) // world
    chunk = chunk_size or auto_chunk(num_g, relevant.max_count, dev)
    values = {m.name: np.full(num_q, np.nan) for m in specs}

    def run_block(start: int) -> tuple[int, dict[str, np.ndarray]]:
        stop = min(start + chunk, hi)
        scores = scores_of(q[start:stop], g, similarity)
        if overrides is not None:  # kept on the host; each block's rows go to the device
            cols, new = (x[start:stop].to(scores.device) for x in overrides)
            scores = scores.scatter(1, cols, new)
        cols, count = relevant.columns_for(query_labels[start:stop])
        return start, block_metrics(
            scores, cols, count, specs, ap, ties, hamming=similarity == "hamming"
        )

    starts = range(lo, hi, chunk)
    if dev.type == "cpu":
        # Worker threads each take a block of queries from product to metrics while its
        # scores sit in cache; BLAS and torch run single-threaded inside them.
        with single_threaded_libraries():
            done = list(pool().map(run_block, starts))
    else:
        done = [run_block(start) for start in starts]
    for start, block in done:
        for name, column in block.items():
            values[name][start : start + len(column)] = column
    if world > 1:
        values = all_reduce_rows(values, lo, hi, dev)

    has_pos = counts > 0
    result: dict[str, Any] = {}
    for m in specs:
        result[m.name] = float(values[m.name][has_pos].mean()) if has_pos.any() else float("nan")
        values[m.name][~has_pos] = np.nan
    result.update(
        {
            "queries": int(has_pos.sum()),
            "queries_without_positives": int((~has_pos).sum()),
            "gallery": num_g,
            "conventions": {
                "ap": ap,
                "similarity": similarity,
                "ties": TIE_TEXT[ties],
                "map@K": "SAKE: cut at K, R=min(K,R)",
                "prec@K": "hits/min(K,G)",
            },
        }
    )
    if per_query:
        result["per_query"] = values
    if per_class:
        result["per_class"] = {
            m.name: class_means(values[m.name], query_labels, has_pos) for m in specs
        }
    return result


# --------------------------------------------------------------------------- inputs


def _parse(name: str) -> Metric:
    canonical = parse_metric(name)
    kind, _, k = canonical.partition("@")
    return Metric(canonical, kind, None if k == "all" else int(k))


def _default_device(x: Any) -> torch.device:
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def _labels(labels: Any, what: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise UserError(f"{what} must be a 1-D array of integer class ids")
    return array.astype(np.int64, copy=False)


def _as_tensor(x: Any, dev: torch.device) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    if t.ndim != 2:
        raise UserError(f"features must be 2-D (N, D), got shape {tuple(t.shape)}")
    return t.detach().to(dev)


def _features(q: Any, g: Any, similarity: str, dev: torch.device) -> tuple[torch.Tensor, ...]:
    q, g = _as_tensor(q, dev), _as_tensor(g, dev)
    if q.shape[1] != g.shape[1]:
        raise UserError(f"query features are {q.shape[1]}-d but gallery features {g.shape[1]}-d")
    if similarity == "hamming":
        return _signed_codes(q), _signed_codes(g)
    q, g = q.float(), g.float()
    if similarity == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)
    if similarity == "euclidean":
        # -|q-g|^2 = 2 q.g - |g|^2 - |q|^2; the last term is constant per query, so it is
        # dropped: rankings are unchanged. The extra column carries -|g|^2 through the product.
        q = torch.cat([2 * q, torch.ones(len(q), 1, device=dev)], dim=1)
        g = torch.cat([g, -(g * g).sum(1, keepdim=True)], dim=1)
    return q.contiguous(), g.contiguous()


def _overrides(
    pair: tuple[Any, Any] | None, num_q: int, num_g: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The checked ``(columns, scores)`` on the host (each block moves its own rows)."""
    if pair is None:
        return None
    cols, values = (torch.as_tensor(x) for x in pair)
    if cols.shape != values.shape or cols.ndim != 2 or len(cols) != num_q:
        raise UserError(
            f"score_overrides must be two ({num_q}, k) arrays, got {tuple(cols.shape)} "
            f"and {tuple(values.shape)}"
        )
    if cols.numel() and (int(cols.min()) < 0 or int(cols.max()) >= num_g):
        raise UserError(f"score_overrides name gallery columns outside 0..{num_g - 1}")
    return cols.long().cpu(), values.float().cpu()


def _signed_codes(codes: torch.Tensor) -> torch.Tensor:
    """Binary codes as float32 +-1: their dot product is ``bits - 2 * hamming``."""
    if codes.dtype == torch.bool:
        return codes.float() * 2 - 1
    values = codes.float()
    if bool(((values == 0) | (values == 1)).all()):
        return values * 2 - 1
    if bool(((values == -1) | (values == 1)).all()):
        return values
    raise UserError("hamming similarity needs binary codes (bool, 0/1 or -1/+1)")


class _RelevantColumns:
    """Gallery columns of each class, padded to one length, for vectorised gathers."""

    def __init__(self, gallery_labels: np.ndarray, dev: torch.device) -> None:
        self.classes, inverse, counts = np.unique(
            gallery_labels, return_inverse=True, return_counts=True
        )
        order = np.argsort(inverse, kind="stable")
        self.max_count = int(counts.max())
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        offsets = np.minimum(np.arange(self.max_count)[None, :], counts[:, None] - 1)
        self.table = torch.from_numpy(order[starts[:, None] + offsets]).to(dev)
        self.class_counts = counts
        self.dev = dev

    def _class_index(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.searchsorted(self.classes, labels)
        index = np.minimum(index, len(self.classes) - 1)
        present = self.classes[index] == labels
        return index, present

    def counts_for(self, labels: np.ndarray) -> np.ndarray:
        index, present = self._class_index(labels)
        return np.where(present, self.class_counts[index], 0)

    def columns_for(self, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index, present = self._class_index(labels)
        counts = torch.from_numpy(np.where(present, self.class_counts[index], 0)).to(self.dev)
        return self.table[torch.from_numpy(index).to(self.dev)], counts
