"""``triplet``: cross-modal triplet loss with in-batch hard-negative mining, the classic
SBIR baseline.

Every sketch of the micro-batch is an anchor against the photos (and every photo against
the sketches): its positive is the farthest same-class item of the other modality, its
negative the nearest other-class one; ``max(0, d(a, p) - d(a, n) + margin)`` on
L2-normalised projections, averaged over anchors that have both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.interfaces import (
    Batch,
    Method,
    MethodSetup,
    ParamGroup,
    Stage,
    StageSettings,
    TrainConfig,
)


@dataclass(frozen=True)
class TripletConfig(TrainConfig):
    """Margin, projection size, and what to retrieve with."""

    skt_factor: int = 1  # every micro-batch needs both modalities
    margin: float = 0.2
    feature: str | None = None
    projection: int = 256
    backbone_lr_mult: float = 0.1
    embed: Literal["projection", "feature"] = "projection"


def hard_triplet_loss(anchors: torch.Tensor, anchor_labels: torch.Tensor, others: torch.Tensor,
                      other_labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss of ``anchors`` against ``others`` (both L2-normalised)."""
    distance = torch.cdist(anchors.float(), others.float())
    same = anchor_labels[:, None] == other_labels[None, :]
    hardest_positive = torch.where(same, distance, float("-inf")).amax(1)
    hardest_negative = torch.where(~same, distance, float("inf")).amin(1)
    usable = torch.isfinite(hardest_positive) & torch.isfinite(hardest_negative)
    if not bool(usable.any()):
        return anchors.sum() * 0.0  # keeps the graph (and DDP) whole when a batch has none
    losses = F.relu(hardest_positive - hardest_negative + margin)
    return losses[usable].mean()


class Triplet(Method):
    """Sketch-photo triplets with the hardest positive and negative in the batch."""

    Config = TripletConfig
    description = "Cross-modal triplet loss with in-batch hard-negative mining"

    def __init__(self, config: TripletConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        self.backbone = setup.backbone.build()
        self.feature = config.feature or self.backbone.default_feature
        self.projection = nn.Linear(self.backbone.feature_dim, config.projection)
        self.net = nn.ModuleDict({"backbone": self.backbone, "projection": self.projection})

    def project(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.backbone(images)[self.feature]), dim=-1)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if batch.sketches is None:
            raise ValueError("triplet needs sketches in every micro-batch (skt_factor=1)")
        photos, sketches = self.project(batch.photos), self.project(batch.sketches)
        margin = self.config.margin
        sketch_anchor = hard_triplet_loss(sketches, batch.sketch_labels, photos,
                                          batch.photo_labels, margin)
        photo_anchor = hard_triplet_loss(photos, batch.photo_labels, sketches,
                                         batch.sketch_labels, margin)
        return {"loss": sketch_anchor + photo_anchor, "sketch_anchor": sketch_anchor,
                "photo_anchor": photo_anchor}

    def stages(self) -> list[Stage]:
        groups = [ParamGroup("backbone", [self.backbone], self.config.backbone_lr_mult),
                  ParamGroup("projection", [self.projection])]
        return [Stage("train", {"net": self.net}, self.training_step,
                      StageSettings.from_config(self.config), groups)]

    def model(self) -> nn.Module:
        return self.net

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        if self.config.embed == "projection":
            return self.project(images)
        return F.normalize(self.backbone(images)[self.feature].float(), dim=-1)
