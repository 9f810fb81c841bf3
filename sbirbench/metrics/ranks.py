"""Ranks of the relevant gallery items under the gallery-index tie rule (``ties="index"``):
a stable sort's order, found without sorting every row where the top K suffices."""

from __future__ import annotations

import math

import numpy as np
import torch

_TIE_PASS_LIMIT = 8  # tied entries in a query row above which the row is argsorted


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows sorted ascending: numpy's SIMD sort on the CPU (several times faster than
    ``torch.sort`` there), ``torch.sort`` on other devices."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return torch.sort(x, dim=1).values


def scores_of(q: torch.Tensor, g: torch.Tensor, similarity: str) -> torch.Tensor:
    """Similarity of each query row to every gallery row, (c, G) float32."""
    if q.device.type == "cpu":
        # numpy's BLAS call is ~2x faster than torch.matmul for these shapes on the CPU.
        return torch.from_numpy(q.numpy() @ g.numpy().T)
    return q @ g.T


def stable_order_ranks(scores: torch.Tensor, hamming: bool) -> torch.Tensor:
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


def ranks_from_sorted(
    scores: torch.Tensor,
    sorted_scores: torch.Tensor,
    needles: torch.Tensor,
    rel_scores: torch.Tensor,
    cols: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """Stable ranks (descending) of the sorted relevant scores, from fully sorted rows."""
    n = scores.shape[1]
    after = torch.searchsorted(sorted_scores, needles, right=True)  # items <= s
    ranks = n - after + 1  # padding (-inf): n + 1
    before = torch.gather(sorted_scores, 1, torch.clamp(after - 2, min=0))
    tied = (after >= 2) & (before == needles) & (needles > -math.inf)
    return _resolve_ties(scores, ranks, tied, needles, rel_scores, cols, valid)


def ranks_from_top(
    scores: torch.Tensor,
    needles: torch.Tensor,
    rel_scores: torch.Tensor,
    cols: torch.Tensor,
    valid: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """Stable ranks (descending) within the top ``k``; the rest (and padding) get n + 1."""
    n = scores.shape[1]
    if scores.device.type == "cpu":
        top = sort_rows(torch.from_numpy(np.partition(scores.numpy(), n - k, axis=1)[:, n - k :]))
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


def _resolve_ties(
    scores: torch.Tensor,
    ranks: torch.Tensor,
    tied: torch.Tensor,
    needles: torch.Tensor,
    rel_scores: torch.Tensor,
    cols: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
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
        full = torch.gather(stable_order_ranks(scores[rows], hamming=False), 1, cols[rows])
        ranks[rows] = -sort_rows(-torch.where(valid[rows], full, n + 1))
    return ranks


def sklearn_terms(
    sorted_scores: torch.Tensor, needles: torch.Tensor, count: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per relevant item: precision at its shared threshold, and that threshold's rank
    (padding gets 0 and n + 1)."""
    n = sorted_scores.shape[1]
    r_max = needles.shape[1]
    at_least = n - torch.searchsorted(sorted_scores, needles, right=False)  # #{all >= s}
    rel_at_least = r_max - torch.searchsorted(needles, needles, right=False)  # #{rel >= s}
    padding = needles == -math.inf
    terms = torch.where(padding, 0.0, rel_at_least.double() / at_least.clamp(min=1).double())
    return terms, torch.where(padding, n + 1, at_least)
