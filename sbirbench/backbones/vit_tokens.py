"""``vit_tokens``: a timm ViT with ``token_num`` extra learned tokens instead of a class
token (the ``vit_small_fd`` of TVT and PSKD).

The network is timm's own ``VisionTransformer`` built with ``class_token=False``,
``reg_tokens=token_num`` and ``no_embed_class=False``: the extra tokens sit in front of
the patches and each has its own position embedding. Pretrained class-token weights are
converted on load: the class token and its position embedding are copied into every
extra token, and the patch position embeddings (and, if the patch size differs, the
patch projection) are resampled with timm's own functions. The output of each token is
its final-LayerNorm state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from sbirbench.errors import UserError
from sbirbench.weights.files import file_sha256, read_state_dict
from sbirbench.weights.hub import check_timm_model, timm_pretrained
from sbirbench.weights.loading import Converted, LoadReport, describe_weights, load_strict

#: DINO's projection head (``head.mlp.0/2/4``): not part of the backbone, handed to a
#: method's fusion head (TVT/PSKD initialise their MLP from it).
PROJECTION_HEAD = "head.mlp."


@dataclass(frozen=True)
class VitTokensConfig:
    """Options of ``vit_tokens`` (``--set backbone.KEY=VALUE``)."""

    model: str = "vit_small_patch8_224.dino"
    img_size: int = 224
    token_num: int = 2
    token_names: tuple[str, ...] = ("distillation", "fusion")
    patch_tokens: bool = False
    pretrained: bool = False
    weights: str | None = None
    weights_key: str | None = None
    weights_ignore: tuple[str, ...] = ()
    drop_path_rate: float = 0.0
    grad_checkpointing: bool = False
    compile: bool = False
    # Architecture overrides (None keeps the timm model's own value).
    patch_size: int | None = None
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None


class VitTokens(nn.Module):
    """timm ViT returning the final-norm state of each extra token by name."""

    Config: ClassVar[type[VitTokensConfig]] = VitTokensConfig
    vit: Any  # timm's VisionTransformer (its attributes are typed loosely by timm)

    def __init__(self, config: VitTokensConfig) -> None:
        super().__init__()
        import timm
        from timm.data import resolve_model_data_config

        if len(config.token_names) != config.token_num:
            raise UserError(
                f"backbone: token_names has {len(config.token_names)} names but "
                f"token_num is {config.token_num}"
            )
        if config.patch_tokens and "patch_tokens" in config.token_names:
            raise UserError("backbone: 'patch_tokens' cannot also be a token name")
        check_timm_model(config.model)
        self.config = config
        arch = ("patch_size", "embed_dim", "depth", "num_heads")
        overrides = {k: getattr(config, k) for k in arch if getattr(config, k) is not None}
        self.vit = timm.create_model(
            config.model,
            pretrained=False,
            num_classes=0,
            global_pool="",
            class_token=False,
            reg_tokens=config.token_num,
            no_embed_class=False,
            img_size=config.img_size,
            drop_path_rate=config.drop_path_rate,
            **overrides,
        )
        if not hasattr(self.vit, "reg_token"):
            raise UserError(f"backbone: '{config.model}' is not a timm VisionTransformer")
        data = resolve_model_data_config(self.vit)
        self.feature_dim: int = self.vit.embed_dim
        self.input_size: int = config.img_size
        self.mean = tuple(float(m) for m in data["mean"])
        self.std = tuple(float(s) for s in data["std"])
        self.feature_names = tuple(config.token_names) + (
            ("patch_tokens",) if config.patch_tokens else ()
        )
        self.default_feature = config.token_names[-1]
        self.interpolation: str = str(data.get("interpolation", "bicubic"))
        #: DINO's projection-head tensors when the weights file has them (keys ``0.weight``,
        #: ``2.weight``, ``4.weight``...), for a method's fusion head; else empty.
        self.projection_head: dict[str, torch.Tensor] = {}
        self.weights_report: LoadReport | None = None
        if config.weights:
            path = Path(config.weights).expanduser()
            state = read_state_dict(path, config.weights_key)
            self.weights_report = self.load_pretrained(state, str(path))
            self.weights_report.sha256 = file_sha256(path)
        elif config.pretrained:
            source = timm_pretrained(config.model, num_classes=0)
            label = source.pretrained_cfg.get("hf_hub_id") or config.model
            self.weights_report = self.load_pretrained(source.state_dict(), f"timm:{label}")
        if self.weights_report is not None:
            self.weights_report.data_config = {
                "mean": list(self.mean),
                "std": list(self.std),
                "interpolation": self.interpolation,
                "input_size": self.input_size,
            }
        if config.grad_checkpointing:
            self.vit.set_grad_checkpointing(True)
        if config.compile:
            self.vit.compile()

    def describe_init(self) -> dict[str, Any]:
        """Where the weights came from (recorded in results)."""
        return describe_weights(self.weights_report)

    def load_pretrained(self, state: dict[str, torch.Tensor], source: str) -> LoadReport:
        """Load a class-token ViT state dict (timm, DINO) or one of this model's own,
        strictly; DINO's projection head is kept for the method's fusion head."""
        return load_strict(self.vit, self.convert(state), source, self.config.weights_ignore)

    def convert(self, state: dict[str, torch.Tensor]) -> Converted:
        """Class token to extra tokens; heads set aside or dropped, each with a reason."""
        state, dropped = dict(state), {}
        for key in [k for k in state if k.startswith("head.")]:
            value = state.pop(key)
            if key.startswith(PROJECTION_HEAD):
                self.projection_head[key.removeprefix(PROJECTION_HEAD)] = value
                dropped[key] = "DINO projection head (for the method's fusion head)"
            else:
                dropped[key] = "pretrained head (this backbone returns token states)"
        if "cls_token" in state and "reg_token" not in state:
            state = self._from_class_token(state)
        return Converted(state, dropped)

    def _from_class_token(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from timm.layers import resample_abs_pos_embed, resample_patch_embed

        state = dict(state)
        cls = state.pop("cls_token")
        count = self.config.token_num
        state["reg_token"] = cls.expand(1, count, cls.shape[-1]).clone()
        pos = state.pop("pos_embed", None)
        if pos is not None:
            grid = self.vit.patch_embed.grid_size
            patches = pos[:, 1:]
            side = math.isqrt(patches.shape[1])
            if side * side != patches.shape[1]:
                raise UserError(
                    f"pretrained position embedding has {patches.shape[1]} patch "
                    "entries, not a square grid"
                )
            if (side, side) != tuple(grid):
                patches = resample_abs_pos_embed(
                    patches, new_size=list(grid), old_size=[side, side], num_prefix_tokens=0
                )
            state["pos_embed"] = torch.cat([pos[:, :1].expand(1, count, pos.shape[-1]), patches], 1)
        proj = state.get("patch_embed.proj.weight")
        target = self.vit.patch_embed.proj.weight
        if proj is not None and proj.shape[-2:] != target.shape[-2:]:
            state["patch_embed.proj.weight"] = resample_patch_embed(proj, list(target.shape[-2:]))
        return state

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.vit.forward_features(images)
        out = {name: tokens[:, i] for i, name in enumerate(self.config.token_names)}
        if self.config.patch_tokens:
            out["patch_tokens"] = tokens[:, self.config.token_num :]
        return out


@dataclass(frozen=True)
class VitTokensTinyConfig(VitTokensConfig):
    """A ViT small enough to train on a CPU in seconds (64 px, 64 patches, width 128)."""

    model: str = "vit_tiny_patch16_224"
    img_size: int = 64
    patch_size: int | None = 8
    embed_dim: int | None = 128
    depth: int | None = 4
    num_heads: int | None = 4


class VitTokensTiny(VitTokens):
    """``vit_tokens`` with :class:`VitTokensTinyConfig` defaults."""

    Config: ClassVar[type[VitTokensConfig]] = VitTokensTinyConfig
