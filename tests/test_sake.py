"""SAKE (docs/methods/sake.md): each loss term against a plain loop over the equations,
the SVD start of the heads, the frozen teacher, and a run on the embedded data set."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from sbirbench.errors import UserError
from sbirbench.interfaces import BackboneSpec, Batch, MethodSetup
from sbirbench.methods.sake import (
    SAKE,
    SAKEConfig,
    preservation_loss,
    preservation_target,
    svd_initialise,
)

from .cli_helpers import SMALL, invoke, only_run
from .test_pretrained_weights import needs_weights

FEATURES, IMAGENET = 12, 20


class TinyImageNetNet(nn.Module):
    """A stand-in for a pretrained backbone with its ImageNet classifier."""

    feature_names = ("pooled", "imagenet_logits")
    default_feature = "pooled"
    feature_dim = FEATURES
    input_size = 8
    mean = std = (0.5, 0.5, 0.5)

    def __init__(self, _config: object = None) -> None:
        super().__init__()
        generator = torch.random.fork_rng()
        with generator:  # every build has the same "pretrained" weights
            torch.manual_seed(0)
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, FEATURES), nn.ReLU())
            self.imagenet_classifier = nn.Linear(FEATURES, IMAGENET)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.body(images)
        return {"pooled": pooled, "imagenet_logits": self.imagenet_classifier(pooled)}


def build(**changes) -> SAKE:
    config = SAKEConfig(embed_dim=6, **changes)
    return SAKE(config, MethodSetup(4, BackboneSpec("tiny", TinyImageNetNet, None)))


def test_the_target_is_the_softmax_of_the_scaled_teacher_logits_row_by_row():
    t = torch.randn(5, 7)
    q = preservation_target(t, 0.7)
    for i in range(5):
        z = sum(math.exp(0.7 * float(t[i, m])) for m in range(7))
        for m in range(7):
            assert float(q[i, m]) == pytest.approx(math.exp(0.7 * float(t[i, m])) / z, rel=1e-5)


def test_the_preservation_loss_is_the_double_loop_over_kept_rows_and_classes():
    u, t = torch.randn(9, 7), torch.randn(9, 7)
    keep = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1], dtype=torch.bool)
    q = preservation_target(t, 1.0)
    total = 0.0
    for i in range(9):
        if keep[i]:
            log_z = math.log(sum(math.exp(float(u[i, m])) for m in range(7)))
            total += sum(-float(q[i, m]) * (float(u[i, m]) - log_z) for m in range(7))
    expected = total / int(keep.sum())
    assert float(preservation_loss(u[keep], q[keep])) == pytest.approx(expected, rel=1e-5)
    assert float(preservation_loss(u[:0], q[:0])) == 0.0


@pytest.mark.parametrize("modalities", ["photo", "both"])
def test_a_step_is_ce_plus_kd_on_the_kept_images(modalities):
    torch.manual_seed(1)
    method = build(kd_modalities=modalities, ce_weight=0.5, kd_weight=2.0)
    photos, sketches = torch.randn(3, 3, 8, 8), torch.randn(2, 3, 8, 8)
    batch = Batch(photos, torch.tensor([0, 1, 2]), sketches, torch.tensor([3, 0]))
    losses = {k: v.detach() for k, v in method.training_step(batch).items()}
    images, labels = torch.cat([photos, sketches]), [0, 1, 2, 3, 0]
    with torch.no_grad():
        out = method.net(images)
        teacher = method.teacher(images)["imagenet_logits"]
    ce = 0.0
    for i, y in enumerate(labels):  # plain cross-entropy over the seen classes, both modalities
        z = out["logits"][i]
        ce += -(float(z[y]) - math.log(sum(math.exp(float(v)) for v in z)))
    ce /= len(labels)
    kept = range(5) if modalities == "both" else range(3)  # the photos come first
    kd = 0.0
    for i in kept:
        q = torch.softmax(teacher[i], -1)
        u = out["imagenet_logits"][i]
        log_z = math.log(sum(math.exp(float(v)) for v in u))
        kd += sum(-float(q[m]) * (float(u[m]) - log_z) for m in range(IMAGENET))
    kd /= len(kept)
    assert float(losses["ce"]) == pytest.approx(ce, rel=1e-5)
    assert float(losses["kd"]) == pytest.approx(kd, rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(0.5 * ce + 2.0 * kd, rel=1e-5)


def test_at_full_rank_the_svd_start_reproduces_the_classifier():
    weight = torch.randn(IMAGENET, FEATURES)
    embedding, imagenet = nn.Linear(FEATURES, FEATURES), nn.Linear(FEATURES, IMAGENET)
    svd_initialise(weight, embedding, imagenet)
    assert torch.allclose(imagenet.weight @ embedding.weight, weight, atol=1e-5)
    low = nn.Linear(FEATURES, 3)
    svd_initialise(weight, low, nn.Linear(3, IMAGENET))  # the best rank-3 approximation
    s = torch.linalg.svdvals(weight)
    assert torch.allclose(low.weight.norm(dim=1), s[:3], atol=1e-5)
    with pytest.raises(UserError, match="embed_dim=13 is more than the rank 12"):
        svd_initialise(weight, nn.Linear(FEATURES, 13), nn.Linear(13, IMAGENET))


def test_the_teacher_and_the_students_own_classifier_stay_as_they_were():
    """An engine optimiser step over the stage's parameter groups changes neither."""
    from sbirbench.runtime.optim import make_adamw, param_groups

    method = build()
    stage = method.stages()[0]
    assert stage.frozen["teacher"] is method.teacher
    for module in stage.frozen.values():  # as the engine does
        module.requires_grad_(False)
    before = {k: v.clone() for k, v in method.teacher.state_dict().items()}
    classifier = method.net.backbone.imagenet_classifier.weight.clone()
    optimiser = make_adamw(
        param_groups(dict(stage.modules), stage.param_groups), torch.device("cpu")
    )
    for group in optimiser.param_groups:
        group["lr"] = 1.0
    batch = Batch(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
    method.training_step(batch)["loss"].backward()
    optimiser.step()
    assert all(torch.equal(before[k], v) for k, v in method.teacher.state_dict().items())
    assert torch.equal(method.net.backbone.imagenet_classifier.weight, classifier)
    assert not torch.equal(method.net.embedding.weight, method.teacher.imagenet_classifier.weight)


def test_a_backbone_without_an_imagenet_classifier_is_one_line(tmp_path, capsys):
    outcome = invoke(
        capsys, "run", "sake", "--dataset", "synthetic", "--backbone", "timm_tiny", *SMALL,
        "--out", str(tmp_path),
    )  # fmt: skip
    assert outcome.code != 0
    assert outcome.err.strip() == (
        "error: sake needs a backbone with its ImageNet classifier: ImageNet weights and "
        "--set backbone.imagenet_head=true (the sake presets set both)"
    )


@needs_weights
def test_sake_runs_on_the_embedded_data_set_with_imagenet_weights(tmp_path, capsys):
    outcome = invoke(capsys, "run", "sake", "--dataset", "synthetic", "--epochs", "1",
                     *SMALL, "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    result = json.loads((only_run(tmp_path, method="sake") / "result.json").read_text())
    assert result["config"]["method_config"]["embed_dim"] == 256  # the cpu-smoke preset
    init = result["initialisation"]["model"]["embedding_and_imagenet_head"]
    assert init.startswith("rank-256 SVD of the backbone's ImageNet classifier")
    assert result["initialisation"]["backbone"]["tensors_loaded"] > 0
    # the saved model evaluated again: the same network, inputs and numbers (the backbone
    # is rebuilt without reading its weights, but with their [-1, 1] normalisation)
    run = only_run(tmp_path, method="sake")
    again = invoke(capsys, "eval", str(run), "--log-format", "quiet", "--no-cache")
    assert again.code == 0, again.err
    evaluation = json.loads((run / "eval-synthetic.json").read_text())
    assert evaluation["inputs"] == result["inputs"]
    assert evaluation["metrics"] == pytest.approx(result["metrics"], abs=1e-6)
