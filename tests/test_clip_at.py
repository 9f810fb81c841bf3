"""CLIP-AT (docs/methods/clip-at.md) on an untrained CPU-sized open_clip model: the
prompted tower against open_clip's own, what trains, the text embeddings, a weights file
round trip, the losses against plain loops, and a run. No CLIP weights can be
downloaded here, so nothing checks what real weights would retrieve."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from sbirbench.errors import UserError
from sbirbench.interfaces import BackboneSpec, Batch, MethodSetup

open_clip = pytest.importorskip("open_clip", reason="the [clip] extra (open_clip_torch)")

from sbirbench.backbones.open_clip_tower import OpenClipConfig, OpenClipTower  # noqa: E402
from sbirbench.methods.clip_at import (  # noqa: E402
    ClipAT,
    ClipATConfig,
    cosine_triplet,
    text_classification,
    trainable_parameters,
)

from .cli_helpers import SMALL, invoke, only_run  # noqa: E402

TINY = OpenClipConfig(model="sbirbench-tiny-clip")
NAMES = ("airplane", "alarm_clock", "car_(sedan)")


def tower(**changes) -> OpenClipTower:
    torch.manual_seed(0)
    return OpenClipTower(OpenClipConfig(**{"model": "sbirbench-tiny-clip", **changes}))


def method(**changes) -> ClipAT:
    torch.manual_seed(0)
    spec = BackboneSpec("open_clip", OpenClipTower, TINY)
    return ClipAT(ClipATConfig(**changes), MethodSetup(3, spec, class_names=NAMES))


def test_the_tower_without_prompts_is_open_clips_own_forward():
    t = tower().eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = t(images)
        own = t.visual(images)
    assert out["embed"].shape == (2, 32) and out["pooled"].shape == (2, 64)
    assert out["tokens"].shape == (2, 4, 64)  # a 2x2 grid of 16-px patches
    assert torch.allclose(out["embed"], own, atol=1e-5)
    with torch.no_grad():
        prompted = t(images, extra_tokens=torch.randn(1, 3, 64))
    assert not torch.allclose(prompted["embed"], own, atol=1e-3)
    assert prompted["tokens"].shape == (2, 4, 64)  # prompt outputs are not patch tokens


@pytest.mark.parametrize(
    ("rule", "extra"),
    [
        ("layernorm", set()),
        ("layernorm+proj", {"visual.proj"}),
        ("sain_code", {"visual.proj", "visual.class_embedding", "visual.positional_embedding"}),
    ],
)
def test_gradients_reach_the_prompts_and_only_the_configured_clip_parameters(rule, extra):
    m = method(trainable=rule)
    names = set(trainable_parameters(m.towers["photo"], rule))
    layer_norms = {
        f"{module_name}.{leaf}"
        for module_name, module in m.towers["photo"].named_modules()
        if isinstance(module, torch.nn.LayerNorm)
        for leaf, _ in module.named_parameters(recurse=False)
    }
    norms = names & layer_norms
    assert norms == layer_norms  # every LayerNorm trains under every rule
    assert extra <= names
    if rule == "sain_code":
        assert any(n.endswith("in_proj_weight") for n in names)
    else:
        assert names == norms | extra
    labels = torch.tensor([0, 1, 2, 0])
    batch = Batch(torch.randn(4, 3, 32, 32), labels, torch.randn(4, 3, 32, 32), labels)
    m.training_step(batch)["loss"].backward()
    for modality, t in m.towers.items():
        got = {n for n, p in t.named_parameters() if p.grad is not None}
        assert got == names, modality
    assert all(p.grad is not None for p in m.prompts.parameters())
    assert m.towers["sketch"] is not m.towers["photo"]  # one LayerNorm set per branch
    assert not m.towers["sketch"]._text and not m.towers["photo"]._text  # text towers freed
    shared = method(share_layernorm=True)
    assert shared.towers["sketch"] is shared.towers["photo"]


def test_text_embeddings_are_the_seen_class_prompts_of_the_same_model():
    m = method()
    reference = tower()
    want = reference.encode_text(["a photo of a airplane", "a photo of a alarm clock",
                                  "a photo of a car (sedan)"])  # fmt: skip
    assert m.text is not None and m.text.shape == (3, 32)
    assert torch.allclose(m.text, torch.nn.functional.normalize(want, dim=-1), atol=1e-5)
    with pytest.raises(UserError, match="seen classes' names"):
        ClipAT(ClipATConfig(), MethodSetup(3, BackboneSpec("open_clip", OpenClipTower, TINY)))


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_a_weights_file_gives_the_same_tower_and_torchscript_is_one_line(tmp_path):
    original = tower()
    path = tmp_path / "open_clip_model.bin"
    torch.save(original._text[0].state_dict(), path)
    torch.manual_seed(123)  # a different random start: the file must decide
    loaded = OpenClipTower(OpenClipConfig(model="sbirbench-tiny-clip", weights=str(path)))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(original.eval()(images)["embed"], loaded.eval()(images)["embed"])
    assert loaded.describe_init()["weights"]["file"] == str(path)
    scripted = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    with pytest.raises(UserError, match="TorchScript archive"):
        OpenClipTower(OpenClipConfig(model="sbirbench-tiny-clip", weights=str(scripted)))
    with pytest.raises(UserError, match="no model 'nope'"):
        OpenClipTower(OpenClipConfig(model="nope"))


def test_without_open_clip_the_backbone_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(UserError, match=r"pip install 'sbirbench\[clip\]'"):
        OpenClipTower(TINY)


def test_the_losses_are_the_plain_formulas():
    torch.manual_seed(1)
    a, p, n = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)

    def cos(x, y):
        return float(x @ y) / float(x.norm() * y.norm())

    want = sum(max(0.0, 0.3 + (1 - cos(a[i], p[i])) - (1 - cos(a[i], n[i]))) for i in range(5)) / 5
    assert float(cosine_triplet(a, p, n, 0.3)) == pytest.approx(want, rel=1e-5)
    text, labels = torch.randn(3, 4), torch.tensor([0, 2, 1, 1, 0])
    total = 0.0
    for i in range(5):
        logits = [100.0 * cos(a[i], text[j]) for j in range(3)]
        top = max(logits)
        log_norm = top + math.log(sum(math.exp(x - top) for x in logits))
        total += log_norm - logits[int(labels[i])]
    assert float(text_classification(a, labels, text, 100.0)) == pytest.approx(total / 5, rel=1e-5)


def test_clip_at_runs_on_the_embedded_data_set(tmp_path, capsys):
    outcome = invoke(capsys, "run", "clip_at", "--dataset", "synthetic", "--preset", "cpu-smoke",
                     "--epochs", "1", *SMALL, "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path, method="clip_at")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert set(history[0]["losses"]) == {"loss", "tri", "cls_sketch", "cls_photo"}
    result = json.loads((run / "result.json").read_text())
    assert result["config"]["backbone_config"]["model"] == "sbirbench-tiny-clip"
    again = invoke(capsys, "eval", str(run), "--log-format", "quiet")
    assert again.code == 0, again.err


@pytest.mark.slow
def test_real_clip_weights_retrieve_above_chance_on_sketchy_mini(tmp_path, capsys):
    """The one check of real CLIP weights: OpenAI's ViT-B/32 untrained by clip_at (0
    epochs: CLIP plus random prompts) on sketchy-mini, well above chance."""
    import os

    from .conftest import SKETCHY_MINI

    weights = os.environ.get("SBIRBENCH_CLIP_WEIGHTS")
    if not weights or not SKETCHY_MINI.is_dir():
        pytest.skip("needs SBIRBENCH_CLIP_WEIGHTS (OpenAI ViT-B/32 state dict) and sketchy-mini")
    outcome = invoke(capsys, "run", "clip_at", "--benchmark", "sketchy-21",
                     "--preset", "sketchy-mini", "--data-root", str(SKETCHY_MINI), "--epochs", "0",
                     "--set", f"backbone.weights={weights}", "--set", "backbone.pretrained=false",
                     "--log-format", "quiet", "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    result = json.loads(next(tmp_path.rglob("result.json")).read_text())
    assert result["metrics"]["map@200"] > 2 * result["chance"]["map@200"]
