"""Backbones: shapes, extra-token initialisation, weight files, errors, timm adapter."""

from __future__ import annotations

import argparse
import pickle

import pytest
import timm
import torch

from sbirbench.backbones.timm_adapter import TimmBackbone, TimmConfig, TimmTiny
from sbirbench.backbones.vit_tokens import VitTokens, VitTokensTiny, VitTokensTinyConfig
from sbirbench.errors import UserError
from sbirbench.interfaces import Backbone
from sbirbench.weights import hub as weights_module

TINY = dict(patch_size=8, embed_dim=64, depth=2, num_heads=2)


def tiny_vit(**changes) -> VitTokens:
    return VitTokensTiny(VitTokensTinyConfig(**{**TINY, **changes}))


def plain_vit(img_size=64, patch_size=8) -> torch.nn.Module:
    """A class-token ViT of the same width, as timm or DINO would save it."""
    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        num_classes=0,
        img_size=img_size,
        **{**TINY, "patch_size": patch_size},
    )
    with torch.no_grad():
        model.cls_token.normal_()
        model.pos_embed.normal_()
    return model


@pytest.mark.parametrize(("img", "patch", "tokens"), [(64, 8, 2), (32, 8, 1), (96, 16, 3)])
def test_token_shapes_and_names(img, patch, tokens):
    names = ("distillation", "fusion", "extra")[:tokens] if tokens > 1 else ("fusion",)
    model = tiny_vit(
        img_size=img, patch_size=patch, token_num=tokens, token_names=names, patch_tokens=True
    )
    assert isinstance(model, Backbone)
    out = model(torch.rand(2, 3, img, img))
    assert list(out) == [*names, "patch_tokens"]
    for name in names:
        assert out[name].shape == (2, 64)
    assert out["patch_tokens"].shape == (2, (img // patch) ** 2, 64)
    assert model.default_feature == names[-1] and model.input_size == img
    assert all(block.attn.fused_attn for block in model.vit.blocks)  # SDPA / flash attention


def test_extra_tokens_start_as_the_class_token(tmp_path):
    source = plain_vit()
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    model = tiny_vit(weights=str(tmp_path / "vit.pth"))
    assert model.weights_report.loaded == len(model.vit.state_dict())
    assert model.weights_report.dropped == {} and len(model.weights_report.sha256) == 64
    for i in range(2):
        assert torch.equal(model.vit.reg_token[0, i], source.cls_token[0, 0])
        assert torch.equal(model.vit.pos_embed[0, i], source.pos_embed[0, 0])
    assert torch.equal(model.vit.pos_embed[0, 2:], source.pos_embed[0, 1:])
    assert torch.equal(model.vit.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)


def test_position_embeddings_are_resampled_for_another_size(tmp_path):
    torch.save(plain_vit(img_size=32).state_dict(), tmp_path / "vit32.pth")
    model = tiny_vit(img_size=64, weights=str(tmp_path / "vit32.pth"))
    assert model.vit.pos_embed.shape == (1, 2 + 64, 64)
    torch.save(plain_vit(patch_size=16).state_dict(), tmp_path / "p16.pth")
    resized = tiny_vit(patch_size=8, weights=str(tmp_path / "p16.pth"))
    assert resized.vit.patch_embed.proj.weight.shape[-2:] == (8, 8)


def test_state_dict_round_trip_is_bitwise(tmp_path):
    model = tiny_vit().eval()
    torch.save(model.state_dict(), tmp_path / "own.pth")
    again = VitTokensTiny(VitTokensTinyConfig(**TINY)).eval()
    again.load_state_dict(torch.load(tmp_path / "own.pth", weights_only=True))
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        a, b = model(images), again(images)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and through weights=PATH (the model's own format: no class-token conversion)
    inner = tmp_path / "inner.pth"
    torch.save(model.vit.state_dict(), inner)
    with torch.no_grad():
        c = tiny_vit(weights=str(inner)).eval()(images)
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_dino_checkpoint_with_prefixes(tmp_path):
    source = plain_vit()
    teacher = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    teacher["head.mlp.0.weight"] = torch.ones(8, 64)  # DINO projection head: kept aside
    teacher["head.last_layer.weight_v"] = torch.zeros(16, 8)  # DINO prototypes: dropped
    student = {f"module.backbone.{k}": torch.zeros_like(v) for k, v in source.state_dict().items()}
    torch.save({"teacher": teacher, "student": student, "epoch": 100}, tmp_path / "dino.pth")
    model = tiny_vit(weights=str(tmp_path / "dino.pth"))  # the teacher is preferred
    assert torch.equal(model.vit.reg_token[0, 1], source.cls_token[0, 0])
    assert torch.equal(model.projection_head["0.weight"], torch.ones(8, 64))
    assert set(model.weights_report.dropped) == {"head.mlp.0.weight", "head.last_layer.weight_v"}
    from_student = tiny_vit(weights=str(tmp_path / "dino.pth"), weights_key="student")
    assert torch.count_nonzero(from_student.vit.reg_token) == 0


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    source = plain_vit()
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()},
        str(tmp_path / "vit.safetensors"),
    )
    model = tiny_vit(weights=str(tmp_path / "vit.safetensors"))
    assert torch.equal(model.vit.reg_token[0, 0], source.cls_token[0, 0])


def test_mismatched_checkpoints_are_errors_never_partial_loads(tmp_path):
    wide = timm.create_model(
        "vit_tiny_patch16_224",
        num_classes=0,
        img_size=64,
        patch_size=8,
        embed_dim=96,
        depth=2,
        num_heads=2,
    )
    torch.save(wide.state_dict(), tmp_path / "wide.pth")
    with pytest.raises(UserError, match=r"differ in shape \('.*' is \(.*96.*\) in the file"):
        tiny_vit(weights=str(tmp_path / "wide.pth"))
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(
        UserError,
        match=r"missing from the file: \d+ .*unexpected in the file: "
        r"1 \(encoder.weight\)",
    ):
        tiny_vit(weights=str(tmp_path / "other.pth"))
    partial = {k: v for k, v in plain_vit().state_dict().items() if not k.startswith("blocks.1")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(UserError) as info:
        tiny_vit(weights=str(tmp_path / "partial.pth"))
    assert "missing from the file: 12 (blocks.1.norm1.weight" in str(info.value)
    assert "\n" not in str(info.value)
    extra = {**plain_vit().state_dict(), "fc_norm.weight": torch.ones(64)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(
        UserError, match="unexpected in the file: 1 \\(fc_norm.weight\\).*weights_ignore"
    ):
        tiny_vit(weights=str(tmp_path / "extra.pth"))
    report = tiny_vit(weights=str(tmp_path / "extra.pth"), weights_ignore=("fc_norm.",))
    assert report.weights_report.dropped == {"fc_norm.weight": "weights_ignore"}
    with pytest.raises(UserError, match="weights file not found"):
        tiny_vit(weights=str(tmp_path / "nope.pth"))


class Payload:
    """Any class: unpickling it could run code, so weights-only loading must refuse it."""


def test_weights_only_loading_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": Payload()}, handle, protocol=2)
    with pytest.raises(UserError, match="weights-only loading refuses"):
        tiny_vit(weights=str(path))
    # a DINO training checkpoint's argparse.Namespace is the one object allowed
    source = plain_vit()
    torch.save(
        {"teacher": source.state_dict(), "args": argparse.Namespace(arch="vit_small")},
        tmp_path / "dino_full.pth",
    )
    assert torch.equal(
        tiny_vit(weights=str(tmp_path / "dino_full.pth")).vit.reg_token[0, 0],
        source.cls_token[0, 0],
    )


def test_pretrained_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(weights_module, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(UserError) as info:
        tiny_vit(pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert "cannot download pretrained weights" in message and "backbone.weights=PATH" in message


def test_unknown_timm_model_suggests_names():
    with pytest.raises(UserError, match="timm has no model 'resnet5O'; did you mean resnet50"):
        TimmBackbone(TimmConfig(model="resnet5O"))


@pytest.mark.parametrize("name", ["resnet10t", "vit_tiny_patch16_224"])
def test_timm_adapter_on_two_families(name):
    model = TimmBackbone(TimmConfig(model=name, img_size=64, tokens=True)).eval()
    assert isinstance(model, Backbone)
    out = model(torch.rand(2, 3, 64, 64))
    assert out["pooled"].shape == (2, model.feature_dim)
    assert out["tokens"].ndim == 3 and out["tokens"].shape[-1] == model.feature_dim
    assert model.input_size == 64 and len(model.mean) == 3


def test_timm_adapter_loads_a_weights_file(tmp_path):
    source = TimmTiny(TimmTiny.Config()).eval()
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.model.state_dict().items()}},
        tmp_path / "cnn.pth",
    )
    loaded = TimmTiny(TimmTiny.Config(weights=str(tmp_path / "cnn.pth"))).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source(images)["pooled"], loaded(images)["pooled"])


def test_gradient_checkpointing_gives_the_same_gradients():
    images = torch.rand(2, 3, 64, 64)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(1)
        model = tiny_vit(grad_checkpointing=checkpointing)
        model(images)["fusion"].sum().backward()
        grads.append(model.vit.blocks[0].attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_bad_token_config():
    with pytest.raises(UserError, match="token_names has 2 names but token_num is 3"):
        tiny_vit(token_num=3)
