"""The Backbone and Method contracts, exercised by a small plugin registered in the test."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import sbirbench
from sbirbench.config import build_config
from sbirbench.interfaces import (
    Backbone,
    BackboneSpec,
    Batch,
    Method,
    MethodSetup,
    Stage,
    StageSettings,
    TrainConfig,
)
from sbirbench.testing import registered_plugin


@dataclass(frozen=True)
class PoolConfig:
    width: int = 8


class PoolBackbone(nn.Module):
    """Global-average-pooled 1x1 convolution: the smallest thing that is a Backbone."""

    Config = PoolConfig
    feature_names = ("pooled",)
    default_feature = "pooled"
    input_size = 16
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self, config: PoolConfig) -> None:
        super().__init__()
        self.feature_dim = config.width
        self.conv = nn.Conv2d(3, config.width, 1)

    def forward(self, images):
        return {"pooled": self.conv(images).mean(dim=(2, 3))}


@dataclass(frozen=True)
class LinearConfig(TrainConfig):
    epochs: int = 3


class LinearProbe(Method):
    Config = LinearConfig
    description = "Cross-entropy on a linear head"

    def __init__(self, config, setup):
        super().__init__(config, setup)
        self.backbone = setup.backbone.build()
        self.head = nn.Linear(self.backbone.feature_dim, setup.num_classes)

    def stages(self):
        def step(batch: Batch):
            losses = {}
            for modality, images, labels in batch.parts():
                logits = self.head(self.backbone(images)["pooled"])
                losses[modality] = nn.functional.cross_entropy(logits, labels)
            return {"loss": sum(losses.values()), **losses}

        settings = StageSettings.from_config(self.config, warmup_epochs=0.0)
        return [Stage("train", {"backbone": self.backbone, "head": self.head}, step, settings)]

    def model(self):
        return self.backbone

    def embed(self, images, modality):
        return self.backbone(images)["pooled"]


class TinyPlugin:
    @sbirbench.hookimpl
    def register_backbones(self, register):
        register("pool", PoolBackbone, description="pooled 1x1 conv")

    @sbirbench.hookimpl
    def register_methods(self, register):
        register("probe", LinearProbe, description=LinearProbe.description)


def test_plugin_backbone_and_method_follow_the_contracts(fresh_plugins):
    with registered_plugin(TinyPlugin(), "tiny") as plugins:
        factory = plugins.backbones.load("pool")
        spec = BackboneSpec(
            "pool", factory, build_config(factory.Config, {"width": "4"}, what="backbone pool")
        )
        backbone = spec.build()
        assert isinstance(backbone, Backbone) and backbone.feature_dim == 4
        method_cls = plugins.methods.load("probe")
        config = build_config(
            method_cls.Config, {"epochs": "2", "skt_factor": "1"}, what="method probe"
        )
        method = method_cls(config, MethodSetup(num_classes=3, backbone=spec))
        (stage,) = method.stages()
        assert stage.settings.epochs == 2 and stage.settings.skt_factor == 1
        assert stage.settings.warmup_epochs == 0.0
        images = torch.rand(5, 3, 16, 16)
        labels = torch.tensor([0, 1, 2, 0, 1])
        batch = Batch(images, labels, images[:2], labels[:2])
        losses = stage.training_step(batch)
        assert set(losses) == {"loss", "photo", "sketch"}
        losses["loss"].backward()
        assert method.head.weight.grad is not None
        assert method.embed(images, "sketch").shape == (5, 4)
