"""One normalisation from training to test: a run at a vanishing learning rate leaves the
backbone, its BatchNorm running statistics included, as it started, so every method whose
retrieval feature is the backbone's reproduces the frozen backbone's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sbirbench import api
from sbirbench.errors import UserError
from sbirbench.modes import evaluating, freeze_batchnorm

#: Every rate vanishes (lr is refused at 0), each stage runs one epoch.
STILL = ["lr=1e-30", "min_lr=0"]
HEAD = ["backbone.imagenet_head=true"]
#: method -> (its overrides, whether it retrieves with the backbone's own feature)
METHODS = {
    "ce": ([], True),
    "triplet": ([], True),
    "kd": (["teacher_epochs=1"], True),
    "pskd": (["teacher_epochs=1"], True),
    "tvt": (HEAD + ["sketch_teacher_epochs=1", "sketch_teacher_lr=1e-30"], True),
    "zse_sbir": (["backbone.tokens=true", "backbone.img_size=128"], True),
    "sake": (HEAD, False),
    "dsn": (HEAD, False),
}
DATA = ["dataset.sketches_per_class=8", "dataset.photos_per_class=8"]


def _weights(folder: Path, head: bool) -> Path:
    """resnet10t weights with BatchNorm running statistics far from 0 and 1, so a layer
    that updates them, or normalises with the batch's, changes the features."""
    import timm

    torch.manual_seed(1)
    model = timm.create_model("resnet10t", num_classes=1000 if head else 0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.3, 3.0)
    path = folder / ("head.pt" if head else "plain.pt")
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[bool, Path]:
    folder = tmp_path_factory.mktemp("weights")
    return {head: _weights(folder, head) for head in (False, True)}


def _run(method: str, out: Path, weights: dict[bool, Path], extra: list[str]) -> api.Result:
    """``method`` on a small synthetic set from the weights file, its cpu-smoke preset with
    ``extra`` overrides; the frozen row (``pretrained``) takes only the backbone's."""
    head = "backbone.imagenet_head=true" in extra
    size = [] if any(s.startswith("backbone.img_size") for s in extra) else ["backbone.img_size=64"]
    overrides = [*DATA, *size, f"backbone.weights={weights[head]}"]
    if method == "pretrained":
        overrides += [s for s in extra if s.startswith("backbone.")]
    else:
        overrides += [*STILL, *extra]
    return api.run(
        method,
        dataset="synthetic",
        backbone="timm_tiny",
        epochs=None if method == "pretrained" else 1,
        batch_size=8,
        out=out,
        log="quiet",
        overrides=overrides,
    )


def _backbone_drift(result: api.Result, weights: Path) -> float:
    """The largest change of any backbone tensor (weights and BatchNorm statistics) of the
    run's final checkpoint from the weights it started from."""
    assert result.run_dir is not None
    state = torch.load(result.run_dir / "checkpoint.pt", weights_only=True)["state"]
    start = torch.load(weights, weights_only=True)
    drift = 0.0
    for key, value in start.items():
        matches = [k for k in state if k.endswith(f"model.{key}")]
        assert matches, f"{key} is not in the checkpoint"
        for k in matches:
            drift = max(drift, float((state[k].double() - value.double()).abs().max()))
    return drift


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_vanishing_rate_leaves_the_backbone_as_the_frozen_one(tmp_path, weights, method):
    extra, backbone_feature = METHODS[method]
    frozen = _run("pretrained", tmp_path / "frozen", weights, extra)
    trained = _run(method, tmp_path / "run", weights, extra)
    assert trained.data["config"]["method_config"]["batchnorm"] == "frozen"
    head = "backbone.imagenet_head=true" in extra
    assert _backbone_drift(trained, weights[head]) < 1e-6
    if backbone_feature:
        assert trained.metrics["map@all"] == pytest.approx(frozen.metrics["map@all"], abs=0.005)


def test_joint_batchnorm_moves_the_statistics_and_only_joint_pass_methods_take_it(
    tmp_path, weights
):
    """The check above can fail: train-mode BatchNorm (SAKE's release) moves them."""
    trained = _run("sake", tmp_path, weights, [*HEAD, "batchnorm=joint"])
    assert trained.data["config"]["method_config"]["batchnorm"] == "joint"
    assert _backbone_drift(trained, weights[True]) > 1e-3
    with pytest.raises(UserError, match="batchnorm=joint needs one forward pass"):
        _run("ce", tmp_path, weights, ["batchnorm=joint"])


def test_auto_freezes_pretrained_statistics_and_trains_a_network_from_scratch():
    from sbirbench.pipeline.options import RunOptions
    from sbirbench.pipeline.resolve import resolve

    def resolved(*overrides: str) -> str:
        options = RunOptions.from_keywords(
            "ce", dataset="synthetic", backbone="timm_tiny", overrides=list(overrides)
        )
        return resolve(options).method_config.batchnorm

    assert resolved() == "train"  # random weights: no statistics worth keeping
    assert resolved("backbone.weights=/nowhere.pt") == "frozen"
    assert resolved("backbone.pretrained=true") == "frozen"
    assert resolved("batchnorm=train", "backbone.pretrained=true") == "train"  # asked for


def test_evaluation_gives_frozen_batchnorm_back_frozen():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    model.train()
    assert freeze_batchnorm(model) == 1
    with evaluating(model):
        assert not any(m.training for m in model.modules())
    assert model[0].training and not model[1].training
