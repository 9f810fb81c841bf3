"""Parts of ``tvt`` (methods/tvt.py): DINO's head, random crops made on a batch tensor,
and the state of the sketch teacher's self-distillation."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .heads import dino_init, projection_mlp


class DistillHead(nn.Module):
    """DINO's head: MLP ``in -> hidden -> hidden -> bottleneck`` (GELU), L2 normalisation,
    then a linear layer to ``out`` whose rows are kept at unit norm (DINO's weight-normed
    last layer with its frozen scale 1)."""

    def __init__(self, in_dim: int, hidden: int, bottleneck: int, out: int) -> None:
        super().__init__()
        self.mlp = projection_mlp(in_dim, hidden, bottleneck)
        self.last = nn.Parameter(torch.empty(out, bottleneck))
        dino_init(self.mlp)
        nn.init.trunc_normal_(self.last, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(self.mlp(x), dim=-1), F.normalize(self.last, dim=-1))


def random_crops(images: torch.Tensor, min_scale: float) -> torch.Tensor:
    """One random resized crop per image (area fraction in [min_scale, 1], aspect 3/4 to
    4/3, bilinear, back to the input size) and a horizontal flip with p 0.5, all in one
    ``grid_sample`` over the batch."""
    theta = crop_boxes(len(images), min_scale, images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # border padding: a crop that touches the image's edge repeats it, as a crop would
    sampled = F.grid_sample(images.float(), grid, align_corners=False, padding_mode="border")
    return sampled.to(images.dtype)


def crop_boxes(n: int, min_scale: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n, 2, 3)`` affine maps of random crops in normalised coordinates: area fraction
    in [min_scale, 1], aspect ratio in [3/4, 4/3] (as far as the image allows), inside the
    image, mirrored with p 0.5."""
    area = torch.empty(n, device=device).uniform_(min_scale, 1.0)
    log_ratio = torch.empty(n, device=device).uniform_(math.log(3 / 4), math.log(4 / 3))
    ratio = log_ratio.exp()
    width, height = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    cx = (torch.rand(n, device=device) * 2 - 1) * (1 - width)
    cy = (torch.rand(n, device=device) * 2 - 1) * (1 - height)
    flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = height, cy
    return theta


class SelfDistillation(nn.Module):
    """Stage ``sketch-teacher``'s state: the student, its EMA teacher (no gradient) and
    the centre of the teacher's outputs (a buffer, so checkpoints keep it)."""

    def __init__(self, network: nn.Module, outputs: int) -> None:
        super().__init__()
        self.student = network
        self.teacher = copy.deepcopy(network).requires_grad_(False)
        self.centre: torch.Tensor
        self.register_buffer("centre", torch.zeros(outputs))
