"""TVT (docs/methods/tvt.md): each loss term and schedule against a plain loop over the
equations, a whole student step, the self-distillation step, the progress the engine
passes, and runs on the embedded data set."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from sbirbench.interfaces import BackboneSpec, Batch, MethodSetup
from sbirbench.methods.tvt import TVT, TVTConfig
from sbirbench.methods.tvt_losses import (
    centre_alignment,
    dino_loss,
    ramp,
    teacher_temperature,
    uniformity,
    update_centre,
)
from sbirbench.methods.tvt_parts import crop_boxes, imagenet_output, random_crops

from .cli_helpers import SMALL, invoke, only_run
from .test_pretrained_weights import needs_weights
from .test_sake import IMAGENET, TinyImageNetNet


def test_the_dino_loss_and_centre_are_the_loops_of_the_equations():
    torch.manual_seed(0)
    s, t, c = torch.randn(4, 6), torch.randn(4, 6), torch.randn(6) * 0.1
    expected = 0.0
    for i in range(4):
        z = sum(math.exp((float(t[i, k]) - float(c[k])) / 0.05) for k in range(6))
        zs = sum(math.exp(float(s[i, k]) / 0.1) for k in range(6))
        for k in range(6):
            q = math.exp((float(t[i, k]) - float(c[k])) / 0.05) / z
            expected -= q * math.log(math.exp(float(s[i, k]) / 0.1) / zs) / 4
    assert float(dino_loss(s, t, c, 0.05, 0.1)) == pytest.approx(expected, rel=1e-5)
    centre = c.clone()
    update_centre(centre, t, 0.9)
    for k in range(6):
        mean = sum(float(t[i, k]) for i in range(4)) / 4
        assert float(centre[k]) == pytest.approx(0.9 * float(c[k]) + 0.1 * mean, rel=1e-5)


def test_uniformity_is_the_log_mean_potential_over_pairs():
    f = F.normalize(torch.randn(5, 3), dim=-1)
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    mean = sum(math.exp(-2 * float(((f[i] - f[j]) ** 2).sum())) for i, j in pairs) / len(pairs)
    assert float(uniformity(f)) == pytest.approx(math.log(mean), rel=1e-5)
    assert float(uniformity(f[:1])) == 0.0


def test_centre_alignment_two_steps_from_zeros_by_hand():
    torch.manual_seed(1)
    own, other = torch.zeros(3, 4), F.normalize(torch.randn(3, 4), dim=-1)
    for step in range(2):
        f = F.normalize(torch.randn(5, 4), dim=-1).requires_grad_(True)
        labels = torch.tensor([0, 2, 2, 0, 2])
        before = own.clone()
        loss = centre_alignment(own, other, f, labels, 0.9)
        expected, news = 0.0, {}
        for c in (0, 2):
            members = [i for i in range(5) if int(labels[i]) == c]
            b = sum(f[i].detach() for i in members) / len(members)
            new = 0.9 * before[c] + 0.1 * b
            news[c] = new / new.norm()
            expected += float(((news[c] - other[c]) ** 2).sum()) / 2
        assert float(loss.detach()) == pytest.approx(expected, rel=1e-5), step
        assert torch.allclose(own[0], news[0]) and torch.allclose(own[2], news[2])
        assert torch.equal(own[1], before[1])  # absent class untouched
        loss.backward()
        assert f.grad is not None and float(f.grad.abs().sum()) > 0


def test_the_schedules_at_their_corners():
    assert [teacher_temperature(e) for e in (0, 1, 2, 4, 4.9, 5, 30)] == pytest.approx(
        [0.04, 0.0475, 0.055, 0.07, 0.07, 0.07, 0.07]
    )
    assert teacher_temperature(0.5, warmup_epochs=1) == 0.04  # linspace(start, end, 1)[0]
    assert teacher_temperature(1, warmup_epochs=1) == 0.07
    assert ramp(0) == ramp(0.99) == 0.0
    assert ramp(1) == 0.0 and ramp(10.5) == pytest.approx(0.5) and ramp(20) == ramp(49) == 1.0
    assert ramp(19.5) < 1.0


def test_random_crops_are_inside_the_image_with_the_stated_area_and_aspect():
    torch.manual_seed(4)
    theta = crop_boxes(2000, 0.4)
    width, height = theta[:, 0, 0].abs(), theta[:, 1, 1]
    free = (width < 1) & (height < 1)  # not clamped to the image's side
    assert float((width * height)[free].min()) >= 0.4 - 1e-5  # the area drawn
    assert float((width * height).min()) >= 0.4 * 3 / 4 - 1e-6  # clamped to the image
    assert float((width * height).max()) <= 1 + 1e-6
    aspect = (width / height)[free]
    assert float(aspect.min()) >= 3 / 4 - 1e-5 and float(aspect.max()) <= 4 / 3 + 1e-5
    assert bool(((theta[:, 0, 2].abs() + width) <= 1 + 1e-6).all())  # inside, left-right
    assert bool(((theta[:, 1, 2].abs() + height) <= 1 + 1e-6).all())  # inside, top-bottom
    flips = (theta[:, 0, 0] < 0).float().mean()
    assert 0.45 < float(flips) < 0.55
    # a crop of a constant image is constant, also at its edges (border padding)
    for seed in range(20):
        torch.manual_seed(seed)
        images = torch.full((6, 3, 16, 16), 0.3)
        assert torch.allclose(random_crops(images, 0.4), images, atol=1e-6), seed


def build(**changes) -> TVT:
    config = TVTConfig(head_hidden=8, head_dim=5, **changes)
    return TVT(config, MethodSetup(4, BackboneSpec("tiny", TinyImageNetNet, None)))


def test_a_student_step_is_the_weighted_sum_of_the_terms_per_modality():
    torch.manual_seed(2)
    method = build(au_ramp_epochs=3)
    photos, sketches = torch.randn(6, 3, 8, 8), torch.randn(6, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    batch = Batch(photos, labels, sketches, labels.flip(0), epoch=2.0)
    net = method.net
    state = {k: v.clone() for k, v in net.state_dict().items()}
    out = method.student_step(batch)
    net.load_state_dict(state)  # the buffers as they were before the step
    tau, r = teacher_temperature(2.0), ramp(2.0, 3)
    assert tau == pytest.approx(0.055) and r == pytest.approx(0.5)
    expected = {"kd": 0.0, "cls": 0.0, "ca": 0.0, "uni": 0.0}
    teachers = {"photo": method.photo_teacher, "sketch": method.sketch.teacher}
    with torch.no_grad():
        for modality, images, y in (
            ("photo", photos, labels),
            ("sketch", sketches, labels.flip(0)),
        ):
            o = net(images)
            t = imagenet_output(teachers[modality], images, "scaled", 0.07)
            other = "sketch" if modality == "photo" else "photo"
            expected["kd"] += float(
                dino_loss(o["distill"], t, getattr(net, f"centre_{modality}"), tau)
            )
            smooth = torch.full((6, 4), 0.1 / 3).scatter_(1, y[:, None], 0.9)
            expected["cls"] += float(-(smooth * F.log_softmax(o["logits"], -1)).sum(-1).mean())
            expected["ca"] += float(centre_alignment(getattr(net, f"classes_{modality}"),
                                                     getattr(net, f"classes_{other}"),
                                                     o["embedding"], y))  # fmt: skip
            expected["uni"] += float(uniformity(o["embedding"]))
            update_centre(getattr(net, f"centre_{modality}"), t)
    for name, value in expected.items():
        assert float(out[name].detach()) == pytest.approx(value, rel=1e-4, abs=1e-6), name
    total = expected["kd"] + expected["cls"] + r * (2.0 * expected["ca"] + 0.5 * expected["uni"])
    assert float(out["loss"].detach()) == pytest.approx(total, rel=1e-4)
    assert net.distill_head(torch.randn(2, 12)).shape[1] == IMAGENET


def test_the_sketch_teacher_step_moves_the_ema_and_leaves_the_photo_teacher():
    torch.manual_seed(3)
    method = build(sketch_teacher_epochs=2)
    state = method.sketch
    photo_before = {k: v.clone() for k, v in method.photo_teacher.state_dict().items()}
    with torch.no_grad():  # the student moves away from the teacher
        for p in state.student.parameters():
            p.add_(0.5)
    teacher_before = [p.clone() for p in state.teacher.parameters()]
    batch = Batch(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long),
                  torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), epoch=0.0)  # fmt: skip
    out = method.sketch_teacher_step(batch)
    out["loss"].backward()
    for ema, old, current in zip(state.teacher.parameters(), teacher_before,
                                 state.student.parameters(), strict=True):  # fmt: skip
        assert torch.allclose(ema, 0.996 * old + 0.004 * current.detach(), atol=1e-6)
    assert all(p.grad is None for p in state.teacher.parameters())
    assert float(state.centre.abs().sum()) > 0
    after = method.photo_teacher.state_dict()
    assert all(torch.equal(photo_before[k], v) for k, v in after.items())


def test_the_engine_passes_the_progress_in_epochs(tmp_path, capsys, monkeypatch):
    from sbirbench.methods.ce import CE

    seen: list[float] = []
    original = CE.training_step

    def spy(self, batch):
        seen.append(batch.epoch)
        return original(self, batch)

    monkeypatch.setattr(CE, "training_step", spy)
    outcome = invoke(capsys, "run", "ce", "--dataset", "synthetic", "--epochs", "2", *SMALL,
                     "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    steps = len(seen) // 2  # 120 photos of 15 seen classes, 8 a step: 15 steps an epoch
    assert steps == 15 and seen == [e + s / steps for e in range(2) for s in range(steps)]


def test_a_backbone_without_an_imagenet_classifier_is_one_line(tmp_path, capsys):
    outcome = invoke(capsys, "run", "tvt", "--dataset", "synthetic", "--backbone", "timm_tiny",
                     *SMALL, "--out", str(tmp_path))  # fmt: skip
    assert outcome.code != 0
    assert outcome.err.strip().startswith(
        "error: tvt needs a backbone with its ImageNet classifier"
    )


@needs_weights
def test_tvt_runs_on_the_embedded_data_set_with_imagenet_weights(tmp_path, capsys):
    short = ["--epochs", "2", "--set", "sketch_teacher_epochs=1"]
    outcome = invoke(capsys, "run", "tvt", "--dataset", "synthetic", *short, *SMALL,
                     "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path, method="tvt")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["stage"] for h in history] == ["sketch-teacher", "student", "student"]
    assert set(history[1]["losses"]) == {"loss", "kd", "cls", "ca", "uni"}
    result = json.loads((run / "result.json").read_text())
    assert result["config"]["method_config"]["head_dim"] == 64  # the cpu-smoke preset
    again = invoke(capsys, "eval", str(run), "--log-format", "quiet", "--no-cache")
    assert again.code == 0, again.err
    evaluation = json.loads((run / "eval-synthetic.json").read_text())
    assert evaluation["metrics"] == pytest.approx(result["metrics"], abs=1e-6)


@pytest.mark.parametrize("kind", ["scaled", "cosine", "logits"])
def test_the_student_starts_as_the_photo_teacher_on_each_output_scale(kind):
    torch.manual_seed(4)
    images = torch.randn(5, 3, 8, 8)
    method = build(teacher_output=kind)
    with torch.no_grad():
        target = imagenet_output(method.photo_teacher, images, kind, 0.07)
        logits = method.photo_teacher(images)["imagenet_logits"].float()
        expected = {"scaled": logits * 0.07, "logits": logits}.get(kind)
        if expected is None:  # cosines
            assert target.abs().max() <= 1.0 + 1e-6
        else:
            torch.testing.assert_close(target, expected)
        torch.testing.assert_close(method.net(images)["distill"], target)
        random = build(teacher_output=kind, distill_init="random").net(images)["distill"]
        assert not torch.allclose(random, target)


def test_the_distillation_heads_last_layer_is_frozen_in_the_first_epoch():
    torch.manual_seed(5)
    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    for epoch, moves in ((0.5, False), (1.5, True)):
        method = build(au_ramp_epochs=3)
        method.student_step(Batch(images, labels, images.flip(0), labels, epoch=epoch))[
            "loss"
        ].backward()
        grad = method.net.distill_head.last.grad
        assert grad is not None and bool(grad.abs().sum() > 0) == moves, epoch


def test_the_sketch_teacher_learns_every_global_target_on_every_other_view():
    """Two global crops for the teacher, two global and two local ones for the student:
    2 x 3 terms, against a loop with the same random crops."""
    torch.manual_seed(6)
    method = build(sketch_teacher_epochs=2, local_crops=2, local_crop_size=1.0)
    state = method.sketch
    sketches = torch.randn(3, 3, 8, 8)
    batch = Batch(sketches, torch.zeros(3, dtype=torch.long), sketches,
                  torch.zeros(3, dtype=torch.long), epoch=1.0)  # fmt: skip
    centre = state.centre.clone()
    torch.manual_seed(7)
    out = method.sketch_teacher_step(batch)
    torch.manual_seed(7)
    views = [random_crops(sketches, 0.4) for _ in range(2)]
    local = [random_crops(sketches, 0.05, 0.4, 8) for _ in range(2)]
    assert random_crops(sketches, 0.05, 0.4, 4).shape == (3, 3, 4, 4)
    tau = teacher_temperature(1.0)
    with torch.no_grad():
        targets = [imagenet_output(state.teacher, v, "scaled", 0.07) for v in views]
        students = [imagenet_output(state.student, v, "scaled", 0.07) for v in views + local]
    terms = [float(dino_loss(s, t, centre, tau)) for i, t in enumerate(targets)
             for j, s in enumerate(students) if j != i]  # fmt: skip
    assert len(terms) == 6
    assert float(out["loss"].detach()) == pytest.approx(sum(terms) / 6, rel=1e-4)
