"""The baseline methods: losses by hand, pretrained features, and a run of each."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sbirbench.interfaces import BackboneSpec, MethodSetup
from sbirbench.methods.kd import kd_loss
from sbirbench.methods.pretrained import Pretrained, PretrainedConfig
from sbirbench.methods.triplet import hard_triplet_loss
from sbirbench.pipeline.embedding import embed
from sbirbench.runtime.distributed import Context
from sbirbench.testing import ToyConfig, ToyDataset

from .cli_helpers import SMALL, invoke, only_run


def test_hard_triplet_loss_by_hand():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    anchor_labels = torch.tensor([0, 1])
    others = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]])
    other_labels = torch.tensor([0, 0, 1])
    # anchor 0: positives at distances 0.894 (0.6,0.8) and 0; hardest = 0.894;
    #           negative (0,-1) at sqrt(2) = 1.414 -> 0.894 - 1.414 + 0.2 < 0 -> 0
    # anchor 1: positive (0,-1) at 2.0; negatives at 0.632 and 1.414 -> 2 - 0.632 + 0.2
    expected = (0.0 + (2.0 - math.sqrt(0.36 + 0.04) + 0.2)) / 2
    loss = hard_triplet_loss(anchors, anchor_labels, others, other_labels, 0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    none = hard_triplet_loss(anchors, torch.tensor([5, 6]), others, other_labels, 0.2)
    assert none.item() == 0.0


def test_semi_hard_triplet_loss_by_hand():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    others = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    d_06_08, root2 = math.sqrt(0.16 + 0.64), math.sqrt(2.0)
    # anchor 0: positive at 0.894 -> nearest farther negative (0,0) at 1.0;
    #           positive at 0 -> nearest farther negative 1.0, 0 - 1 + 0.5 < 0
    # anchor 1: positive at 2.0 -> no negative farther, the nearest one (0.632);
    #           positive (0,0) at 1.0 -> nearest farther negative (1,0) at 1.414
    expected = (
        (d_06_08 - 1.0 + 0.5) + 0.0 + (2.0 - math.sqrt(0.4) + 0.5) + (1.0 - root2 + 0.5)
    ) / 4
    loss = hard_triplet_loss(anchors, torch.tensor([0, 1]), others, labels, 0.5, "semi-hard")
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    batch_hard = hard_triplet_loss(anchors, torch.tensor([0, 1]), others, labels, 0.5)
    assert batch_hard.item() == pytest.approx(
        ((d_06_08 - 1.0 + 0.5) + (2.0 - math.sqrt(0.4) + 0.5)) / 2, rel=1e-5
    )


def test_kd_loss_is_t_squared_kl_by_hand():
    student, teacher, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), 2.0
    p = torch.softmax(teacher / t, dim=1)[0]
    log_q = torch.log_softmax(student / t, dim=1)[0]
    expected = t * t * float(sum(p[i] * (torch.log(p[i]) - log_q[i]) for i in range(2)))
    assert kd_loss(student, teacher, t).item() == pytest.approx(expected, rel=1e-6)


def test_pretrained_gives_exactly_the_backbone_features():
    from sbirbench.backbones.timm_adapter import TimmTiny

    torch.manual_seed(0)
    spec = BackboneSpec("timm_tiny", TimmTiny, TimmTiny.Config(img_size=32))
    method = Pretrained(PretrainedConfig(), MethodSetup(4, spec))
    assert method.stages() == []
    images = torch.rand(3, 3, 32, 32)
    method.model().eval()
    with torch.no_grad():
        expected = method.backbone(images)["pooled"]
        assert torch.equal(method.embed(images, "sketch"), expected)
    dataset = ToyDataset(ToyConfig(image_size=32))
    features = embed(method, dataset, "photo", context=Context())
    from sbirbench.data.items import ImageItems
    from sbirbench.data.transforms import eval_transform
    from sbirbench.interfaces import InputSpec

    transform = eval_transform(InputSpec(32, method.backbone.mean, method.backbone.std))
    items = ImageItems(dataset, dataset.items("test", "photo"), "photo", transform)
    batch = torch.stack([items[i].image for i in range(len(items))])
    with torch.no_grad():
        direct = method.backbone(batch)["pooled"]
    torch.testing.assert_close(features.features, direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("method", "stages"),
    [
        ("pretrained", set()),
        ("ce", {"train"}),
        ("triplet", {"train"}),
        ("kd", {"teacher", "student"}),
    ],
)
def test_each_baseline_trains_on_synthetic_and_writes_a_result(tmp_path, capsys, method, stages):
    extra = ["--set", "teacher_epochs=1"] if method == "kd" else []
    outcome = invoke(
        capsys,
        "run",
        method,
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--epochs",
        "1",
        *SMALL,
        *extra,
    )
    assert outcome.code == 0, outcome.err
    result = json.loads((only_run(tmp_path, method=method) / "result.json").read_text())
    assert result["method"] == method and set(result["wall_time"]["stages"]) == stages
    assert 0.0 <= result["metrics"]["map@all"] <= 1.0
