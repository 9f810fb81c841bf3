"""Losses shared by the built-in methods."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch
import torch.nn.functional as F


def loss_sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum(terms)``, typed as the tensor it is: there is at least one term (a batch
    always has photos), so the sum is never ``sum``'s start value, the int 0."""
    return cast(torch.Tensor, sum(terms))


def label_smoothed_ce(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1
) -> torch.Tensor:
    """Cross-entropy against ``1 - smoothing`` on the target and ``smoothing / (C - 1)`` on
    every other class, averaged over rows.

    This is the TVT/PSKD definition; ``F.cross_entropy(label_smoothing=e)`` instead puts
    ``e / C`` on every class (the target included), a different distribution.
    """
    log_prob = F.log_softmax(logits.float(), dim=-1)
    classes = log_prob.shape[-1]
    if classes == 1:
        return -log_prob[:, 0].mean()
    weight = torch.full_like(log_prob, smoothing / (classes - 1))
    weight.scatter_(-1, target[:, None], 1.0 - smoothing)
    return -(weight * log_prob).sum(-1).mean()


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_c -p_ic log softmax(z_i)_c`` (no gradient flows into ``target_probs``)."""
    return -(target_probs.detach() * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def pair_in_batch(
    sketch_labels: torch.Tensor, photo_labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each sketch i: a photo of its class (position i when it is one, else the first
    such photo) and a photo of another class (the next such one after i, cyclically).
    Returns the two index vectors and a mask of the sketches that have both."""
    n, m = len(sketch_labels), len(photo_labels)
    same = sketch_labels[:, None] == photo_labels[None, :]
    rows = torch.arange(n, device=same.device)[:, None]
    cols = torch.arange(m, device=same.device)[None, :]
    # Position i first, then the photos in order: a key that sorts them so.
    positive_key = torch.where(same, torch.where(cols == rows, -1, cols), m)
    positive = positive_key.argmin(1)
    ahead = (cols - rows - 1) % m  # 0 for the photo right after i
    negative = torch.where(~same, ahead, m).argmin(1)
    valid = same.any(1) & (~same).any(1)
    return positive, negative, valid
