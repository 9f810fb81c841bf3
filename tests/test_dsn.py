"""DSN (docs/methods/dsn.md): the supervised contrastive term against a plain double loop,
the contrastive views, a whole step against SAKE's terms, and a run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sbirbench.interfaces import BackboneSpec, Batch, MethodSetup
from sbirbench.methods.dsn import DSN, DSNConfig, contrastive_view, supervised_contrastive
from sbirbench.methods.sake import preservation_loss, preservation_target

from .cli_helpers import SMALL, invoke, only_run
from .test_pretrained_weights import needs_weights
from .test_sake import TinyImageNetNet


def test_the_contrastive_loss_is_the_double_loop_over_anchors_and_positives():
    torch.manual_seed(0)
    features = torch.randn(9, 5)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3, 2, 1])  # class 3 has one row: no positive
    tau = 0.5
    f = torch.nn.functional.normalize(features, dim=-1)
    total, anchors = 0.0, 0
    for a in range(9):
        positives = [p for p in range(9) if p != a and labels[p] == labels[a]]
        if not positives:
            continue
        denominator = sum(math.exp(float(f[a] @ f[k]) / tau) for k in range(9) if k != a)
        total += -sum(
            math.log(math.exp(float(f[a] @ f[p]) / tau) / denominator) for p in positives
        ) / len(positives)
        anchors += 1
    expected = total / anchors
    assert float(supervised_contrastive(features, labels, tau)) == pytest.approx(expected, rel=1e-5)
    lonely = supervised_contrastive(features[:2], torch.tensor([0, 1]), tau)
    assert float(lonely) == 0.0


def test_a_view_flips_and_greys_images_and_keeps_the_normalisation():
    torch.manual_seed(0)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    raw = torch.rand(16, 3, 6, 6)
    images = (raw - mean) / std
    same = contrastive_view(images, mean, std, jitter=0.0, jitter_p=0.0, grayscale_p=0.0)
    for i in range(16):  # each image is itself or its mirror image
        assert torch.allclose(same[i], images[i], atol=1e-5) or torch.allclose(
            same[i], images[i].flip(-1), atol=1e-5
        )
    grey = contrastive_view(images, mean, std, jitter=0.0, jitter_p=0.0, grayscale_p=1.0)
    pixels = grey * std + mean
    assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=1e-5)
    assert torch.allclose(pixels[:, 1], pixels[:, 2], atol=1e-5)
    jittered = contrastive_view(images, mean, std, jitter=0.4, jitter_p=1.0, grayscale_p=0.0)
    assert float((jittered * std + mean).min()) >= -1e-6
    assert float((jittered * std + mean).max()) <= 1 + 1e-6


def test_a_step_is_sakes_terms_on_the_base_views_plus_the_weighted_contrast():
    torch.manual_seed(1)
    method = DSN(
        DSNConfig(embed_dim=6, contrastive_weight=0.3),
        MethodSetup(4, BackboneSpec("tiny", TinyImageNetNet, None)),
    )
    photos, sketches = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 0, 1, 3])
    batch = Batch(photos, labels[:3], sketches, labels[3:])
    torch.manual_seed(5)
    losses = {k: v.detach() for k, v in method.training_step(batch).items()}
    torch.manual_seed(5)  # the same two views again
    base = torch.cat([photos, sketches])
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.5)
    views = [contrastive_view(base, mean, std, 0.4, 0.8, 0.2) for _ in range(2)]
    with torch.no_grad():  # the tiny network has no BatchNorm: base rows do not see the views
        out = method.net(base)
        target = preservation_target(method.teacher(photos)["imagenet_logits"], 1.0)
        view_embeddings = method.net(torch.cat(views))["embedding"]
    con = supervised_contrastive(view_embeddings, labels.repeat(2), 0.07)
    assert float(losses["con"]) == pytest.approx(float(con), rel=1e-5)
    ce = torch.nn.functional.cross_entropy(out["logits"], labels)
    kd = preservation_loss(out["imagenet_logits"][:3], target)
    assert float(losses["ce"]) == pytest.approx(float(ce), rel=1e-5)
    assert float(losses["kd"]) == pytest.approx(float(kd), rel=1e-5)
    expected = losses["ce"] + losses["kd"] + 0.3 * losses["con"]
    assert float(losses["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(losses["con"]) > 0


@needs_weights
def test_dsn_runs_on_the_embedded_data_set_with_imagenet_weights(tmp_path, capsys):
    outcome = invoke(capsys, "run", "dsn", "--dataset", "synthetic", "--epochs", "1",
                     *SMALL, "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path, method="dsn")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert set(history[0]["losses"]) == {"loss", "ce", "kd", "con"}
    result = json.loads((run / "result.json").read_text())
    assert result["config"]["method_config"]["embed_dim"] == 64
