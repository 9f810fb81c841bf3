"""``ce``: fine-tuning with label-smoothed cross-entropy on sketches and photos through
one network (the teacher stage of PSKD, on its own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
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

from .heads import HeadedBackbone
from .losses import label_smoothed_ce, loss_sum


@dataclass(frozen=True)
class CEConfig(TrainConfig):
    """Head sizes, smoothing, the backbone's learning-rate multiplier, what to embed."""

    feature: str | None = None
    head_hidden: int = 2048
    head_dim: int = 256
    smoothing: float = 0.1
    backbone_lr_mult: float = 0.1
    embed: Literal["feature", "head"] = "feature"


class CE(Method):
    """Label-smoothed cross-entropy over the seen classes, for both modalities."""

    Config = CEConfig
    description = "Fine-tune with label-smoothed cross-entropy (PSKD's teacher stage alone)"

    def __init__(self, config: CEConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        self.net = HeadedBackbone(
            setup.backbone.build(),
            setup.num_classes,
            feature=config.feature,
            hidden=config.head_hidden,
            out=config.head_dim,
        )

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        losses: dict[str, torch.Tensor] = {}
        for modality, images, labels in batch.parts():
            logits = self.net(images)["logits"]
            losses[f"ce_{modality}"] = label_smoothed_ce(logits, labels, self.config.smoothing)
        return {"loss": loss_sum(losses.values()), **losses}

    def stages(self) -> list[Stage]:
        groups = [
            ParamGroup("backbone", [self.net.backbone], self.config.backbone_lr_mult),
            ParamGroup("head", [self.net.head]),
        ]
        return [
            Stage(
                "train",
                {"net": self.net},
                self.training_step,
                StageSettings.from_config(self.config),
                groups,
            )
        ]

    def model(self) -> nn.Module:
        return self.net

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return self.net.embed(images, self.config.embed)
