"""Parts of ``tvt`` (methods/tvt.py): DINO's head and its normalised last layer, the
teachers' output on the scale DINO's temperatures were made for, random crops made on a
batch tensor, and the state of the sketch teacher's self-distillation."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .heads import dino_init, projection_mlp


def classifier_output(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    kind: str,
    scale: float,
    freeze: bool = False,
) -> torch.Tensor:
    """A K-way last layer on ``features``, on one of three scales:

    - ``scaled``: the logits times ``scale`` (TVT passes its final teacher temperature),
      so at that temperature the softmax of the output is the network's own prediction;
    - ``cosine``: DINO's weight-normed layer, the cosine of each L2-normalised feature with
      each unit-norm row (bias dropped), in [-1, 1];
    - ``logits``: the raw logits (~20 wide for an ImageNet classifier, which the DINO
      temperatures 0.04-0.07 turn into one-hot targets).

    With ``freeze`` the layer gets a zero gradient (DINO's ``freeze_last_layer``; a zero,
    not a missing gradient, so DDP still finds every parameter used)."""
    if freeze:
        weight = weight.detach() + 0 * weight
        bias = None if bias is None else bias.detach() + 0 * bias
    if kind == "cosine":
        return F.linear(F.normalize(features.float(), dim=-1), F.normalize(weight.float(), dim=-1))
    logits = F.linear(features.float(), weight.float(), None if bias is None else bias.float())
    return logits * scale if kind == "scaled" else logits


def imagenet_output(
    network: Any, images: torch.Tensor, kind: str, scale: float, freeze: bool = False
) -> torch.Tensor:
    """An ImageNet network's K-way output (:func:`classifier_output` of its pooled feature
    and its ImageNet classifier)."""
    classifier = network.imagenet_classifier
    feature = network(images)[network.default_feature]
    return classifier_output(feature, classifier.weight, classifier.bias, kind, scale, freeze)


class DistillHead(nn.Module):
    """h_D. Given the teacher's classifier (``start``), that layer itself on the feature,
    with the teacher's output scale: the student's output then starts as the teacher's,
    as the release starts its student from the teacher's head. Without it, DINO's head:
    MLP ``in -> hidden -> hidden -> bottleneck`` (GELU) and a cosine layer to ``out``, the
    MLP and the rows DINO-initialised."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        bottleneck: int,
        out: int,
        start: nn.Linear | None = None,
        kind: str = "cosine",
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.mlp: nn.Module
        self.bias: nn.Parameter | None = None
        self.kind, self.scale = (kind, scale) if start is not None else ("cosine", 1.0)
        if start is not None:
            self.mlp = nn.Identity()
            self.last = nn.Parameter(start.weight.detach().clone().float())
            if start.bias is not None and kind != "cosine":
                self.bias = nn.Parameter(start.bias.detach().clone().float())
        else:
            self.mlp = projection_mlp(in_dim, hidden, bottleneck)
            self.last = nn.Parameter(torch.empty(out, bottleneck))
            dino_init(self.mlp)
            nn.init.trunc_normal_(self.last, std=0.02)

    def forward(self, x: torch.Tensor, freeze_last: bool = False) -> torch.Tensor:
        return classifier_output(self.mlp(x), self.last, self.bias, self.kind, self.scale,
                                 freeze_last)  # fmt: skip


def random_crops(
    images: torch.Tensor, min_scale: float, max_scale: float = 1.0, size: int | None = None
) -> torch.Tensor:
    """One random resized crop per image (area fraction in [min_scale, max_scale], aspect
    3/4 to 4/3, bilinear, to ``size`` px, default the input's) and a horizontal flip with
    p 0.5, all in one ``grid_sample`` over the batch."""
    theta = crop_boxes(len(images), min_scale, images.device, max_scale)
    n, c, h, w = images.shape
    shape = [n, c, size or h, size or w]
    grid = F.affine_grid(theta, shape, align_corners=False)
    # border padding: a crop that touches the image's edge repeats it, as a crop would
    sampled = F.grid_sample(images.float(), grid, align_corners=False, padding_mode="border")
    return sampled.to(images.dtype)


def crop_boxes(
    n: int, min_scale: float, device: torch.device | str = "cpu", max_scale: float = 1.0
) -> torch.Tensor:
    """``(n, 2, 3)`` affine maps of random crops in normalised coordinates: area fraction
    in [min_scale, max_scale], aspect ratio in [3/4, 4/3] (as far as the image allows),
    inside the image, mirrored with p 0.5."""
    area = torch.empty(n, device=device).uniform_(min_scale, max_scale)
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
