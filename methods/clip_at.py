"""``clip_at``: CLIP for All Things ZS-SBIR (Sain et al., CVPR 2023), category level.

A CLIP image tower (``--backbone open_clip``) kept frozen but for its LayerNorms, with K
learned prompt tokens per modality appended to its input, and one LayerNorm set per
modality (a copy of the tower for sketches). Two losses (docs/methods/clip-at.md):

    d(a, b) = 1 - cos(a, b) on the 512-d outputs f
    L_tri = mean max(0, margin + d(f_s, f_p+) - d(f_s, f_p-))    p+: a photo of s's class
    L_cls = CE over the seen classes of cos(f, t_j) * exp(logit_scale), for sketches and
            photos, t_j = CLIP's text embedding of "a photo of a <class j>" (frozen)
    L = L_tri + cls_weight * (L_cls^sketch + L_cls^photo)

Retrieval: the L2-normalised output of each modality's branch with its prompt.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.errors import UserError
from sbirbench.interfaces import (
    Batch,
    Method,
    MethodSetup,
    ParamGroup,
    Stage,
    StageSettings,
    TrainConfig,
)

from .losses import pair_in_batch


@dataclass(frozen=True)
class ClipATConfig(TrainConfig):
    """The spec's defaults: prompts at 1e-4 and CLIP's trainables at 0.01x that (1e-6),
    constant, no weight decay, batch 64, 60 epochs, no augmentation."""

    backbone: str = "open_clip"
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-4
    lr_ref_batch: int = 64
    min_lr: float = 1e-4
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    weight_decay_end: float | None = None
    clip_grad: float | None = None
    skt_factor: int = 1
    augment: Literal["dino", "basic", "none"] = "none"
    n_prompts: int = 3
    #: What of CLIP trains: its LayerNorms (the paper), plus the projection, or what the
    #: released code trains (every parameter not named weight/bias, plus the norms).
    trainable: Literal["layernorm", "layernorm+proj", "sain_code"] = "layernorm"
    share_layernorm: bool = False
    clip_lr_mult: float = 0.01
    margin: float = 0.3
    cls_weight: float = 0.5
    template: str = "a photo of a {}"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_prompts < 1:  # an unused prompt parameter would stall DDP
            raise ValueError(f"n_prompts={self.n_prompts}: must be at least 1")
        if "{}" not in self.template:
            raise ValueError(f"template={self.template!r}: must hold {{}} for the class name")


def trainable_parameters(tower: nn.Module, rule: str) -> list[str]:
    """Names of the parameters of ``tower`` that ``rule`` trains."""
    names = []
    for module_name, module in tower.named_modules():
        for leaf, _ in module.named_parameters(recurse=False):
            name = f"{module_name}.{leaf}" if module_name else leaf
            norm = isinstance(module, nn.LayerNorm)
            if (
                norm
                or (rule == "layernorm+proj" and leaf == "proj")
                or (rule == "sain_code" and leaf not in ("weight", "bias"))
            ):
                names.append(name)
    return names


def cosine_triplet(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """mean max(0, margin + (1 - cos(a, p)) - (1 - cos(a, n)))."""
    d_pos = 1 - F.cosine_similarity(anchor, positive, dim=-1)
    d_neg = 1 - F.cosine_similarity(anchor, negative, dim=-1)
    return F.relu(margin + d_pos - d_neg).mean()


def text_classification(
    features: torch.Tensor, labels: torch.Tensor, text: torch.Tensor, scale: float
) -> torch.Tensor:
    """Cross-entropy of ``scale * cos(f_i, t_j)`` over the classes j."""
    logits = scale * F.normalize(features, dim=-1) @ F.normalize(text, dim=-1).T
    return F.cross_entropy(logits, labels)


class Prompts(nn.Module):
    """K learned tokens per modality (``torch.randn``, as released)."""

    def __init__(self, count: int, width: int, modalities: tuple[str, ...]) -> None:
        super().__init__()
        self.tokens = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(1, count, width)) for m in modalities}
        )


class ClipAT(Method):
    """Prompted CLIP towers, a cosine triplet loss and CLIP-text classification."""

    Config = ClipATConfig
    description = "CLIP-AT (CVPR 2023): prompt learning on a frozen CLIP, category level"

    def __init__(self, config: ClipATConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        tower: Any = setup.backbone.build()
        if not (hasattr(tower, "encode_text") and hasattr(tower, "drop_text")):
            raise UserError("clip_at needs the open_clip backbone (--backbone open_clip)")
        tower.requires_grad_(False)
        for name in trainable_parameters(tower, config.trainable):
            tower.get_parameter(name).requires_grad_(True)
        self.register_text(tower, setup)  # frees the text tower before the copy below
        sketch_tower = tower if config.share_layernorm else copy.deepcopy(tower)
        self.towers = nn.ModuleDict({"photo": tower, "sketch": sketch_tower})
        self.prompts = Prompts(config.n_prompts, tower.width, ("photo", "sketch"))
        self.net = nn.ModuleDict({"towers": self.towers, "prompts": self.prompts})
        self.scale = tower.logit_scale

    def register_text(self, tower: Any, setup: MethodSetup) -> None:
        """The seen classes' text embeddings, once (training only), then the text tower
        is freed."""
        self.text: torch.Tensor | None = None
        if setup.training and setup.num_classes:
            if len(setup.class_names) != setup.num_classes:
                raise UserError("clip_at needs the seen classes' names (MethodSetup.class_names)")
            prompts = [self.config.template.format(n.replace("_", " ")) for n in setup.class_names]
            self.text = F.normalize(tower.encode_text(prompts), dim=-1)
        tower.drop_text()

    def encode(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return self.towers[modality](images, extra_tokens=self.prompts.tokens[modality])["embed"]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if batch.sketches is None or batch.sketch_labels is None:
            raise ValueError("clip_at needs sketches in every micro-batch (skt_factor=1)")
        assert self.text is not None, "built for training with the seen classes' names"
        c = self.config
        sketches, photos = self.encode(batch.sketches, "sketch"), self.encode(batch.photos, "photo")
        positive, negative, valid = pair_in_batch(batch.sketch_labels, batch.photo_labels)
        tri = (
            cosine_triplet(
                sketches[valid], photos[positive[valid]], photos[negative[valid]], c.margin
            )
            if bool(valid.any())
            else sketches.sum() * 0.0
        )
        text = self.text.to(sketches.device)
        cls_sketch = text_classification(sketches, batch.sketch_labels, text, self.scale)
        cls_photo = text_classification(photos, batch.photo_labels, text, self.scale)
        loss = tri + c.cls_weight * (cls_sketch + cls_photo)
        return {"loss": loss, "tri": tri, "cls_sketch": cls_sketch, "cls_photo": cls_photo}

    def stages(self) -> list[Stage]:
        groups = [
            ParamGroup("prompts", [self.prompts]),
            # One tower when the LayerNorms are shared: each parameter once.
            ParamGroup(
                "clip",
                list({id(t): t for t in self.towers.values()}.values()),
                self.config.clip_lr_mult,
            ),
        ]
        settings = StageSettings.from_config(self.config)
        return [
            Stage(
                "train", {"net": self.net}, self.training_step, settings, groups, pair_photos=True
            )
        ]

    def model(self) -> nn.Module:
        return self.net

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return F.normalize(self.encode(images, modality).float(), dim=-1)
