"""TVT's loss terms and schedules (docs/methods/tvt.md), as plain tensor functions.

- ``dino_loss``: cross-entropy between the centred, sharpened teacher output and the
  student's distribution (DINO's loss, TVT's L_KD).
- ``update_centre``: the teacher-output centre, an exponential moving average of batch
  means (over all processes).
- ``centre_alignment``: L_CA, the distance between a modality's class centres on the
  hypersphere and the other modality's stored centres.
- ``uniformity``: L_UNI of Wang and Isola, log of the mean Gaussian potential over pairs.
- ``teacher_temperature`` and ``ramp``: the per-epoch teacher temperature and the cosine
  ramp of the L_CA and L_UNI weights.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F


def dino_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    centre: torch.Tensor,
    teacher_temp: float,
    student_temp: float = 0.1,
) -> torch.Tensor:
    """``mean_i sum_k -q_ik log softmax(s_i / tau_S)_k`` with ``q = softmax((t - c) /
    tau_T)``; no gradient flows into the teacher side."""
    q = F.softmax((teacher.detach().float() - centre) / teacher_temp, dim=-1)
    return -(q * F.log_softmax(student.float() / student_temp, dim=-1)).sum(-1).mean()


def _all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all processes (itself when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def update_centre(centre: torch.Tensor, teacher: torch.Tensor, momentum: float = 0.9) -> None:
    """``c <- m c + (1 - m) mean_i t_i``, the mean taken over every process's batch."""
    total = _all_sum(torch.cat([teacher.float().sum(0), teacher.new_tensor([len(teacher)])]))
    centre.mul_(momentum).add_(total[:-1] / total[-1], alpha=1 - momentum)


def centre_alignment(
    own: torch.Tensor,
    other: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    momentum: float = 0.9,
) -> torch.Tensor:
    """L_CA for one modality's batch, and the update of its class centres ``own``
    (classes x dim, in place).

    For each class c in the batch (gathered over processes): ``b_c`` = the mean feature
    of its samples (the gradient flows only through this process's samples), the new
    centre ``normalize(m sg(own[c]) + (1 - m) b_c)``; the loss is the mean over those
    classes of ``|new_c - other[c]|^2`` (``other`` as stored, no gradient). The code
    multiplies it by the number of processes (undoing the gradient averaging of DDP);
    the caller does that in the loss it minimises, so the logged value does not depend
    on the number of processes."""
    classes, dim = own.shape
    f = features.float()
    local = torch.zeros(classes, dim, device=f.device).index_add(0, labels, f)
    counts = torch.zeros(classes, device=f.device).index_add(
        0, labels, torch.ones(len(labels), device=f.device)
    )
    everywhere = _all_sum(torch.cat([local.detach(), counts[:, None]], dim=1))
    present = everywhere[:, -1] > 0
    sums = local + (everywhere[:, :-1] - local.detach())  # others' samples without gradient
    mean = sums[present] / everywhere[present, -1:]
    new = F.normalize(momentum * own[present].detach() + (1 - momentum) * mean, dim=-1)
    with torch.no_grad():
        own[present] = new.detach().to(own.dtype)
    return (new - other[present].detach().float()).pow(2).sum(-1).mean()


def uniformity(features: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """``log mean_{i<j} exp(-t |f_i - f_j|^2)`` over the rows; zero for fewer than two."""
    n = len(features)
    if n < 2:
        return features.sum() * 0.0
    distances = torch.pdist(features.float(), p=2).pow(2)
    return torch.logsumexp(-t * distances, dim=0) - math.log(len(distances))


def teacher_temperature(
    epoch: float, start: float = 0.04, end: float = 0.07, warmup_epochs: int = 5
) -> float:
    """The code's per-epoch schedule: ``linspace(start, end, warmup)[e]`` for the first
    ``warmup`` epochs (e = the epoch's index), then ``end``."""
    e = int(epoch)
    if e >= warmup_epochs:
        return end
    return start if warmup_epochs == 1 else start + (end - start) * e / (warmup_epochs - 1)


def ramp(epoch: float, ramp_epochs: float = 20.0) -> float:
    """The L_CA/L_UNI weight's fraction of its final value: 0 through the first epoch,
    then ``(1 - cos(pi (epoch - 1) / (ramp_epochs - 1))) / 2``, then 1 from
    ``ramp_epochs`` on."""
    if epoch < 1:
        return 0.0
    if epoch >= ramp_epochs or ramp_epochs <= 1:
        return 1.0
    return (1 - math.cos(math.pi * (epoch - 1) / (ramp_epochs - 1))) / 2
