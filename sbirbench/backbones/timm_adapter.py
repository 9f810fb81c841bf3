"""``timm``: any ``timm.create_model`` name as a backbone (``--backbone timm:resnet50``).

Features: ``pooled`` (the model's own pooling, ``forward_head(pre_logits=True)``) and,
with ``tokens=true`` for token models, the ``tokens`` of ``forward_features``. Feature
size, input size and normalisation come from timm's data config.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .weights import check_timm_model, load_into, read_state_dict, timm_pretrained


@dataclass(frozen=True)
class TimmConfig:
    """Options of the timm adapter (``--set backbone.KEY=VALUE``)."""

    model: str = "resnet50"
    img_size: int | None = None
    pretrained: bool = False
    weights: str | None = None
    weights_key: str | None = None
    tokens: bool = False
    drop_path_rate: float | None = None
    grad_checkpointing: bool = False
    compile: bool = False


class TimmBackbone(nn.Module):
    """A timm model's pooled features (and tokens) under the Backbone contract."""

    Config: ClassVar[type[TimmConfig]] = TimmConfig

    def __init__(self, config: TimmConfig) -> None:
        super().__init__()
        import timm
        from timm.data import resolve_model_data_config

        check_timm_model(config.model)
        self.config = config
        kwargs: dict = {"num_classes": 0}
        if config.drop_path_rate is not None:
            kwargs["drop_path_rate"] = config.drop_path_rate
        create = (timm_pretrained if config.pretrained and not config.weights
                  else lambda name, **kw: timm.create_model(name, pretrained=False, **kw))
        try:  # token models take img_size; CNNs take any input size and reject it
            self.model = create(config.model, **kwargs,
                                **({"img_size": config.img_size} if config.img_size else {}))
        except TypeError:
            self.model = create(config.model, **kwargs)
        if config.weights:
            state = read_state_dict(config.weights, config.weights_key)
            filter_fn = getattr(sys.modules[type(self.model).__module__], "checkpoint_filter_fn",
                                None)
            if filter_fn is not None:  # timm's own conversion (resampled position embeddings)
                state = filter_fn(state, self.model)
            self.weights_report = load_into(self.model, state, config.weights,
                                            ignore=("head.", "fc.", "classifier."))
        data = resolve_model_data_config(self.model)
        self.feature_dim: int = self.model.num_features
        self.input_size: int = config.img_size or int(data["input_size"][-1])
        self.mean = tuple(float(m) for m in data["mean"])
        self.std = tuple(float(s) for s in data["std"])
        self.feature_names = ("pooled", "tokens") if config.tokens else ("pooled",)
        self.default_feature = "pooled"
        if config.grad_checkpointing:
            self.model.set_grad_checkpointing(True)
        if config.compile:
            self.model.compile()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.model.forward_features(images)
        out = {"pooled": self.model.forward_head(features, pre_logits=True)}
        if self.config.tokens:
            out["tokens"] = features if features.ndim == 3 else features.flatten(2).transpose(1, 2)
        return out


@dataclass(frozen=True)
class TimmTinyConfig(TimmConfig):
    """A small CNN for CPU runs: timm's resnet10t at 64 px."""

    model: str = "resnet10t"
    img_size: int | None = 64


class TimmTiny(TimmBackbone):
    """``timm`` with :class:`TimmTinyConfig` defaults."""

    Config: ClassVar[type[TimmConfig]] = TimmTinyConfig
