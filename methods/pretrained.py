"""``pretrained``: no training, the backbone's own features (the zero-shot start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from sbirbench.interfaces import Method, MethodSetup, Stage, TrainConfig


@dataclass(frozen=True)
class PretrainedConfig(TrainConfig):
    """Which backbone feature to retrieve with (default: the backbone's default)."""

    feature: str | None = None


class Pretrained(Method):
    """Retrieval with the untouched backbone: L2-normalised features, no stage."""

    Config = PretrainedConfig
    description = "No training: features of the (pretrained) backbone"

    def __init__(self, config: PretrainedConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        backbone = setup.backbone.build()
        self.backbone = cast(nn.Module, backbone)  # every Backbone is an nn.Module
        self.feature = config.feature or backbone.default_feature

    def stages(self) -> list[Stage]:
        return []

    def model(self) -> nn.Module:
        return self.backbone

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        """The raw feature (cosine similarity normalises it)."""
        return self.backbone(images)[self.feature].float()
