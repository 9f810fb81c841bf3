"""Retrieval metrics for ZS-SBIR: mAP@all, mAP@K and Prec@K, exact and vectorised.

Conventions (each result records them):

* Ranking: gallery items by descending similarity. Tied scores are ordered by gallery
  index, lower first: the order of a stable sort (``np.argsort(-s, kind="stable")``).
* ``ap="interpolated"`` (the SAKE code, used by TVT/PSKD): precision at each rank is made
  monotone from the right and summed over the ranks where recall grows, times the recall
  step: ``AP = 1/R * sum_i max_{j>=i} j / k_j`` with ``k_j`` the rank of the j-th relevant
  item.
* ``ap="sklearn"``: sklearn's ``average_precision_score`` per query: tied scores share one
  threshold, ``AP = 1/R * sum_i #{relevant >= s_i} / #{all >= s_i}``.
* ``map@K``: the ranking is cut at ``K' = min(K, G)`` and AP is normalised by
  ``min(K', R)`` (SAKE). With ``ap="sklearn"`` a relevant item counts when its shared
  threshold rank ``#{all >= s_i}`` is at most ``K'``.
* ``prec@K``: relevant items among the first ``K'`` divided by ``K'`` (SAKE: K unless the
  gallery is smaller than K).
* Queries without a relevant gallery item are excluded from every mean and counted in
  ``queries_without_positives``.

How: one matrix product per block of queries; the rows are sorted (numpy's SIMD sort on
the CPU, ``torch.sort`` on a GPU) and the ranks of the relevant items found with a
batched ``searchsorted``; the few relevant items with tied scores get their stable rank
from one comparison pass. Prec@K and mAP@K alone need only the top K (a partition, no
full sort). Hash codes (``similarity="hamming"``) have huge tie groups and go through a
stable integer argsort (a radix sort on the CPU). On the CPU, worker threads take
blocks of queries end to end; no Python loop runs over queries.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from sbirbench.benchmarks import parse_metric
from sbirbench.errors import UserError

AP_CONVENTIONS = ("interpolated", "sklearn")
SIMILARITIES = ("cosine", "dot", "euclidean", "hamming")
#: Queries per block on the CPU, where each worker thread takes a block from matrix
#: product to metrics (perf/metrics_speed.py --chunk-sizes: 192-256 were fastest).
CPU_MAX_CHUNK = 256
_TIE_PASS_LIMIT = 8  # tied entries in a query row above which the row is argsorted


@dataclass(frozen=True)
class _Metric:
    name: str
    kind: str  # "map" or "prec"
    k: int | None  # None = all


def retrieval_metrics(
    query_feats: Any,
    query_labels: Any,
    gallery_feats: Any,
    gallery_labels: Any,
    *,
    metrics: Sequence[str] = ("map@all", "prec@100"),
    ap: str = "interpolated",
    similarity: str = "cosine",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    per_query: bool = False,
    per_class: bool = False,
    distributed: bool = True,
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
    keyed by label.
    """
    specs = [_parse(m) for m in metrics]
    if ap not in AP_CONVENTIONS:
        raise UserError(f"unknown AP convention '{ap}'; use one of {', '.join(AP_CONVENTIONS)}")
    if similarity not in SIMILARITIES:
        raise UserError(f"unknown similarity '{similarity}'; use one of {', '.join(SIMILARITIES)}")
    dev = torch.device(device) if device is not None else _default_device(query_feats)
    query_labels = _labels(query_labels, "query_labels")
    gallery_labels = _labels(gallery_labels, "gallery_labels")
    q, g = _features(query_feats, gallery_feats, similarity, dev)
    if len(q) != len(query_labels) or len(g) != len(gallery_labels):
        raise UserError("features and labels differ in length")
    num_q, num_g = len(q), len(g)
    if num_g == 0:
        raise UserError("the gallery is empty")

    relevant = _RelevantColumns(gallery_labels, dev)
    counts = relevant.counts_for(query_labels)
    rank, world = _dist_rank_world(distributed)
    lo, hi = num_q * rank // world, num_q * (rank + 1) // world
    chunk = chunk_size or _auto_chunk(num_g, relevant.max_count, dev)
    values = {m.name: np.full(num_q, np.nan) for m in specs}

    def run_block(start: int) -> tuple[int, dict[str, np.ndarray]]:
        stop = min(start + chunk, hi)
        scores = _scores(q[start:stop], g, similarity)
        cols, count = relevant.columns_for(query_labels[start:stop])
        return start, _block_metrics(scores, cols, count, specs, ap,
                                     hamming=similarity == "hamming")

    starts = range(lo, hi, chunk)
    if dev.type == "cpu":
        # Worker threads each take a block of queries from product to metrics while its
        # scores sit in cache; BLAS and torch run single-threaded inside them.
        with _single_threaded_libraries():
            done = list(_pool().map(run_block, starts))
    else:
        done = [run_block(start) for start in starts]
    for start, block in done:
        for name, column in block.items():
            values[name][start:start + len(column)] = column
    if world > 1:
        values = _all_reduce_rows(values, lo, hi, dev)

    has_pos = counts > 0
    result: dict[str, Any] = {}
    for m in specs:
        result[m.name] = float(values[m.name][has_pos].mean()) if has_pos.any() else float("nan")
        values[m.name][~has_pos] = np.nan
    result.update({
        "queries": int(has_pos.sum()),
        "queries_without_positives": int((~has_pos).sum()),
        "gallery": num_g,
        "conventions": {"ap": ap, "similarity": similarity, "ties": "gallery index",
                        "map@K": "SAKE: cut at K, R=min(K,R)", "prec@K": "hits/min(K,G)"},
    })
    if per_query:
        result["per_query"] = values
    if per_class:
        result["per_class"] = {
            m.name: _per_class(values[m.name], query_labels, has_pos) for m in specs
        }
    return result


# --------------------------------------------------------------------------- inputs
def _parse(name: str) -> _Metric:
    canonical = parse_metric(name)
    kind, _, k = canonical.partition("@")
    return _Metric(canonical, kind, None if k == "all" else int(k))


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
        self.classes, inverse, counts = np.unique(gallery_labels, return_inverse=True,
                                                  return_counts=True)
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


# --------------------------------------------------------------------------- device ops
def _cpus() -> int:
    """CPUs this process may use (the container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(8, _cpus()))


_THREADS_LOCK = threading.Lock()


@contextlib.contextmanager
def _single_threaded_libraries() -> Iterator[None]:
    """Our worker threads split the queries; BLAS and torch inside them must not fan out
    again. threadpoolctl is the only portable way to limit numpy's BLAS threads at run
    time (their busy-waiting after each product otherwise slows the sorts by ~15%). The
    thread settings are process-wide, so concurrent calls take turns."""
    from threadpoolctl import threadpool_limits

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
        finally:
            torch.set_num_threads(before)


def _sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows sorted ascending: numpy's SIMD sort on the CPU (several times faster than
    ``torch.sort`` there), ``torch.sort`` on other devices."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return torch.sort(x, dim=1).values


def _scores(q: torch.Tensor, g: torch.Tensor, similarity: str) -> torch.Tensor:
    """Similarity of each query row to every gallery row, (c, G) float32."""
    if q.device.type == "cpu":
        # numpy's BLAS call is ~2x faster than torch.matmul for these shapes on the CPU.
        return torch.from_numpy(q.numpy() @ g.numpy().T)
    return q @ g.T


def _stable_order_ranks(scores: torch.Tensor, hamming: bool) -> torch.Tensor:
    """1-based rank of every gallery item under the stable (gallery index) tie rule."""
    c, n = scores.shape
    if scores.device.type == "cpu":
        keys = -scores.numpy()
        if hamming:  # small integers: numpy's stable sort is a radix sort for int16
            keys = np.rint(keys).astype(np.int16)
        order = torch.from_numpy(np.argsort(keys, axis=1, kind="stable"))
    else:
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    positions = torch.arange(1, n + 1, device=order.device).expand(c, n)
    return ranks.scatter_(1, order, positions)


# --------------------------------------------------------------------------- per chunk
def _block_metrics(scores: torch.Tensor, cols: torch.Tensor, count: torch.Tensor,
                   specs: list[_Metric], ap: str, *, hamming: bool) -> dict[str, np.ndarray]:
    """Metric values for each query row of a block of rows.

    The relevant items' scores are sorted first (padding as -inf), so their ranks come
    out in descending order: the entry at position p is the (r_max - p)-th best relevant
    item, padding ranks as n + 1 (beyond every cut), and the precision envelope
    ``max_{j' >= j}`` is a forward cumulative maximum.
    """
    n = scores.shape[1]
    r_max = cols.shape[1]
    valid = torch.arange(r_max, device=cols.device)[None, :] < count[:, None]
    rel_scores = torch.gather(scores, 1, cols)
    needles = _sort_rows(torch.where(valid, rel_scores, -math.inf))
    ks = [min(m.k, n) for m in specs if m.k is not None]
    sklearn_map = ap == "sklearn" and any(m.kind == "map" for m in specs)
    sorted_scores = None
    if hamming:
        ranks = torch.gather(_stable_order_ranks(scores, hamming=True), 1, cols)
        ranks = -_sort_rows(-torch.where(valid, ranks, n + 1))
        if sklearn_map:
            sorted_scores = _sort_rows(scores)
    elif sklearn_map or any(m.k is None for m in specs) or max(ks) * 4 > n:
        sorted_scores = _sort_rows(scores)
        ranks = _ranks_from_sorted(scores, sorted_scores, needles, rel_scores, cols, valid)
    else:
        ranks = _ranks_from_top(scores, needles, rel_scores, cols, valid, max(ks))

    nth = torch.arange(r_max, 0, -1, device=ranks.device, dtype=torch.float64)[None, :]
    precision = nth / ranks
    norm = count.double()
    shared = _sklearn_terms(sorted_scores, needles, count) if sklearn_map else None
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
            terms, shared_rank = shared
            value = (terms * (shared_rank <= k)).sum(1) / norm.clamp(max=k).clamp(min=1)
        out[m.name] = value.cpu().numpy()
    return out


def _ranks_from_sorted(scores: torch.Tensor, sorted_scores: torch.Tensor, needles: torch.Tensor,
                       rel_scores: torch.Tensor, cols: torch.Tensor,
                       valid: torch.Tensor) -> torch.Tensor:
    """Stable ranks (descending) of the sorted relevant scores, from fully sorted rows."""
    n = scores.shape[1]
    after = torch.searchsorted(sorted_scores, needles, right=True)  # items <= s
    ranks = n - after + 1  # padding (-inf): n + 1
    before = torch.gather(sorted_scores, 1, torch.clamp(after - 2, min=0))
    tied = (after >= 2) & (before == needles) & (needles > -math.inf)
    return _resolve_ties(scores, ranks, tied, needles, rel_scores, cols, valid)


def _ranks_from_top(scores: torch.Tensor, needles: torch.Tensor, rel_scores: torch.Tensor,
                    cols: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """Stable ranks (descending) within the top ``k``; the rest (and padding) get n + 1."""
    n = scores.shape[1]
    if scores.device.type == "cpu":
        top = _sort_rows(torch.from_numpy(np.partition(scores.numpy(), n - k, axis=1)[:, n - k:]))
    else:
        top = torch.topk(scores, k, dim=1, sorted=True).values.flip(1)
    threshold = top[:, :1]
    candidate = needles >= threshold  # every item above the threshold is in `top`
    after = torch.searchsorted(top, needles, right=True)
    ranks = torch.where(candidate, k - after + 1, n + 1)
    before = torch.gather(top, 1, torch.clamp(after - 2, min=0))
    # An equal score may also sit outside the top k when s equals the threshold.
    tied = candidate & (((after >= 2) & (before == needles)) | (needles == threshold))
    return _resolve_ties(scores, ranks, tied, needles, rel_scores, cols, valid)


def _resolve_ties(scores: torch.Tensor, ranks: torch.Tensor, tied: torch.Tensor,
                  needles: torch.Tensor, rel_scores: torch.Tensor, cols: torch.Tensor,
                  valid: torch.Tensor) -> torch.Tensor:
    """Stable ranks for relevant items whose score other items share.

    ``ranks`` holds, for a tied score, the rank of the first item of its tie group; the
    group's items take consecutive ranks in gallery-index order. Equal relevant scores
    are adjacent in ``needles``; the run's first slot takes the group's last relevant
    member (ranks stay descending along the row). Rows with many tied entries are ranked
    by a stable argsort instead.
    """
    if not bool(tied.any()):
        return ranks
    n = scores.shape[1]
    heavy = tied.sum(1) > _TIE_PASS_LIMIT
    light = tied & ~heavy[:, None]
    ranks = ranks.clone()
    if bool(light.any()):
        rows, slots = light.nonzero(as_tuple=True)
        value = needles[rows, slots]
        stop = torch.searchsorted(needles[rows], value[:, None], right=True)[:, 0]
        # The member this slot stands for, in gallery-index order (cols ascend per row).
        same = (rel_scores[rows] == value[:, None]) & valid[rows]
        member = torch.argmax((torch.cumsum(same, 1) == (stop - slots)[:, None]).int(), dim=1)
        column = cols[rows, member]
        step = max(1, (1 << 25) // max(n, 1))  # bound the (entries x n) comparison in memory
        for s in range(0, len(rows), step):
            e = slice(s, s + step)
            entry, index = (scores[rows[e]] == value[e, None]).nonzero(as_tuple=True)
            lower = entry[index < column[e][entry]]
            ranks[rows[e], slots[e]] += torch.bincount(lower, minlength=len(rows[e]))
    if bool(heavy.any()):
        rows = heavy.nonzero(as_tuple=True)[0]
        full = torch.gather(_stable_order_ranks(scores[rows], hamming=False), 1, cols[rows])
        ranks[rows] = -_sort_rows(-torch.where(valid[rows], full, n + 1))
    return ranks


def _sklearn_terms(sorted_scores: torch.Tensor, needles: torch.Tensor,
                   count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per relevant item: precision at its shared threshold, and that threshold's rank
    (padding gets 0 and n + 1)."""
    n = sorted_scores.shape[1]
    r_max = needles.shape[1]
    at_least = n - torch.searchsorted(sorted_scores, needles, right=False)  # #{all >= s}
    rel_at_least = r_max - torch.searchsorted(needles, needles, right=False)  # #{rel >= s}
    padding = needles == -math.inf
    terms = torch.where(padding, 0.0, rel_at_least.double() / at_least.clamp(min=1).double())
    return terms, torch.where(padding, n + 1, at_least)


# --------------------------------------------------------------------------- plumbing
def _auto_chunk(num_gallery: int, max_relevant: int, dev: torch.device) -> int:
    """Queries per block: the score rows, their sorted copy and the stable-rank path's
    int64 indices fit a memory budget (on the CPU shared by the concurrent workers)."""
    per_row = num_gallery * 32 + max_relevant * 64
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return max(1, int(free * 0.4) // per_row)
    budget = min(_available_memory() // 4, 2 << 30) // _pool()._max_workers
    return max(1, min(CPU_MAX_CHUNK, budget // per_row))


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def _dist_rank_world(enabled: bool) -> tuple[int, int]:
    import torch.distributed as dist

    if enabled and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce_rows(values: dict[str, np.ndarray], lo: int, hi: int,
                     dev: torch.device) -> dict[str, np.ndarray]:
    """Every rank filled rows [lo, hi); sum zero-filled copies so all ranks hold all rows."""
    import torch.distributed as dist

    names = list(values)
    stacked = np.zeros((len(names), len(next(iter(values.values())))))
    for i, name in enumerate(names):
        stacked[i, lo:hi] = values[name][lo:hi]
    backend_device = dev if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.from_numpy(stacked).to(backend_device)
    dist.all_reduce(tensor)
    reduced = tensor.cpu().numpy()
    return {name: reduced[i].copy() for i, name in enumerate(names)}


def _per_class(values: np.ndarray, labels: np.ndarray, has_pos: np.ndarray) -> dict[int, float]:
    keep = has_pos
    classes, inverse = np.unique(labels[keep], return_inverse=True)
    sums = np.bincount(inverse, weights=values[keep], minlength=len(classes))
    counts = np.bincount(inverse, minlength=len(classes))
    return {int(c): float(s / n) for c, s, n in zip(classes, sums, counts, strict=True)}
