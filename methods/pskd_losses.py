"""The losses of PSKD (Wang et al., ACM MM 2022), one function per equation of
``shared/docs/PSKD.md``.

Notation: ``f`` are the student's L2-normalised head embeddings of a sub-batch (n x d),
``W`` the rows of its classifier (the class prototypes, C x d), ``y`` the labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import soft_cross_entropy


def ila_loss(
    prototypes: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    smoothing: float = 0.1,
    same_class: str = "negative",
) -> torch.Tensor:
    """Instance-level adaptive learning: ``S_ij = w_{y_i} . f_j``; the label-smoothed
    cross-entropy of each row ``S_i.`` against ``j = i`` (no temperature), averaged over i.

    ``same_class="negative"``: other samples of the same class are negatives (the
    released code); ``"ignore"``: they are left out of row i, and the smoothing mass is
    shared by the remaining negatives.
    """
    similarity = prototypes[labels].float() @ features.float().T  # (n, n)
    n = similarity.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=similarity.device)
    allowed = torch.ones_like(eye)
    if same_class == "ignore":
        allowed = (labels[:, None] != labels[None, :]) | eye
    elif same_class != "negative":
        raise ValueError(f"ila_same_class must be 'negative' or 'ignore', not '{same_class}'")
    negatives = (allowed & ~eye).sum(1, keepdim=True)
    log_prob = F.log_softmax(similarity.masked_fill(~allowed, float("-inf")), dim=1)
    off = torch.where(negatives > 0, smoothing / negatives.clamp(min=1), 0.0)
    on = torch.where(negatives > 0, 1.0 - smoothing, 1.0)
    weight = torch.where(eye, on, torch.where(allowed, off, 0.0))
    return -(weight * log_prob.masked_fill(~allowed, 0.0)).sum(1).mean()


def correlation_matrix(prototypes: torch.Tensor) -> torch.Tensor:
    """``M_ab = cos(w_a, w_b)`` (C x C), computed without gradient."""
    with torch.no_grad():
        unit = F.normalize(prototypes.detach().float(), dim=1)
        return unit @ unit.T


def reconstruct_teacher(
    teacher_logits: torch.Tensor,
    correlation: torch.Tensor,
    labels: torch.Tensor,
    combine: str = "multiply",
) -> torch.Tensor:
    """``z~_T,i = z_T,i * M[y_i, :]`` (the released code) or ``z_T,i + M[y_i, :]`` (the
    paper's figure)."""
    rows = correlation[labels]
    if combine == "multiply":
        return teacher_logits.float() * rows
    if combine == "add":
        return teacher_logits.float() + rows
    raise ValueError(f"combine must be 'multiply' or 'add', not '{combine}'")


def skd_loss(student_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_c -p*_ic log softmax(z_S,i)_c`` with ``p* = softmax(target)``
    (temperature 1); no gradient flows into the target."""
    return soft_cross_entropy(student_logits, F.softmax(target_logits.detach().float(), dim=-1))
