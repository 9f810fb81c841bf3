"""``zse_sbir``: Zero-Shot Everything SBIR (Lin et al., CVPR 2023).

One encoder for both modalities gives each image a retrieval token [Ret] and a grid of
patch tokens. For a (sketch, photo) pair, a cross-attention layer per modality lets each
side's tokens attend to the other's, and a relation network turns the cosines between
the two sides' pooled patch cells into one matching score r (docs/methods/zse-sbir.md):

    a, q, n = [Ret] after cross-attention of s (with p+), p+ (with s), p- (with s-)
    L = tri_weight * max(0, |a - q| - |a - n| + margin)
      + rn_weight * mean over pairs of (r - y)^2,  y = 0.99 for (s, p+), 0.01 for (s-, p-)

with s- another sketch of s's class.

Retrieval is two stage: the cosine of the encoder's [Ret] ranks the gallery, and r
re-orders each query's top ``rerank_k`` photos (sbirbench.interfaces.Reranker); results record
both. With a CNN backbone, [Ret] is the pooled feature and the patch tokens are the
final feature map's cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.errors import UserError
from sbirbench.interfaces import (
    Batch,
    Method,
    MethodSetup,
    ParamGroup,
    Reranker,
    Stage,
    StageSettings,
    TrainConfig,
)
from sbirbench.modes import evaluating

from .losses import pair_in_batch
from .zse_parts import CrossAttention, RelationNetwork, grid_side, relation_term, triplet_term


@dataclass(frozen=True)
class ZSESBIRConfig(TrainConfig):
    """The release's training (AdamW at a constant 1e-5, weight decay 0.01, no
    augmentation, batch 15) and its modules; see the spec for every default."""

    epochs: int = 5
    batch_size: int = 15
    lr: float = 1e-5
    lr_ref_batch: int = 15
    min_lr: float = 1e-5
    warmup_epochs: float = 0.0
    weight_decay: float = 0.01
    weight_decay_end: float | None = None
    clip_grad: float | None = None
    skt_factor: int = 1
    augment: Literal["dino", "basic", "none"] = "none"
    #: Backbone outputs: the retrieval token (None: its default feature) and the patch
    #: tokens (B, N, D) on a square grid, of the same width D (None: "patch_tokens" of
    #: vit_tokens, else "tokens" of a timm model).
    ret_feature: str | None = None
    token_feature: str | None = None
    heads: int = 8
    ffn_dim: int = 1024
    dropout: float = 0.1
    ca_swap: Literal["key", "query"] = "key"
    rn_dim: int = 512
    rn_token_layout: Literal["release", "grid"] = "release"
    tri_weight: float = 2.0
    rn_weight: float = 4.0
    tri_margin: float = 1.0
    rn_target: tuple[float, float] = (0.01, 0.99)
    #: The sketch of the negative relation pair (s-, p-): ``partner``, another sketch of
    #: the anchor's class (the release; sketches then come in same-class pairs), or
    #: ``anchor``, the anchor sketch itself.
    negative_sketch: Literal["partner", "anchor"] = "partner"
    #: Stage-1 candidates each query's relation re-orders (None: every photo, the
    #: release's "Ours-RN" ranking; its cost grows with queries x gallery).
    rerank_k: int | None = 100
    backbone_lr_mult: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("heads", "ffn_dim", "rn_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout}: must be in [0, 1)")
        if self.rerank_k is not None and self.rerank_k < 1:
            raise ValueError(f"rerank_k={self.rerank_k}: must be at least 1 (or null: all)")
        low, high = self.rn_target
        if not 0 <= low < high <= 1:
            raise ValueError(
                f"rn_target={self.rn_target}: must be (low, high), 0 <= low < high <= 1"
            )


class ZSESBIR(Method, Reranker):
    """Encoder, a cross-attention layer per modality, and the relation network."""

    Config = ZSESBIRConfig
    description = (
        "ZSE-SBIR (CVPR 2023): cross-attention and a token relation network, two-stage retrieval"
    )

    def __init__(self, config: ZSESBIRConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        backbone = setup.backbone.build()
        self.backbone: Any = backbone
        self.ret_feature = config.ret_feature or backbone.default_feature
        names = backbone.feature_names
        self.token_feature = config.token_feature or (
            "patch_tokens" if "patch_tokens" in names else "tokens"
        )
        dim, tokens = self._shapes(backbone)
        if dim % config.heads:
            raise UserError(f"zse_sbir: heads={config.heads} does not divide the token width {dim}")
        try:
            side = grid_side(tokens)
        except ValueError as error:
            raise UserError(f"zse_sbir: {error}") from None
        if side < 2:
            raise UserError(
                f"zse_sbir: a {side}x{side} token grid is too small for the relation "
                "network's 2x2 cells; raise backbone.img_size"
            )
        self.ca_sketch = CrossAttention(
            dim, config.heads, config.ffn_dim, config.dropout, config.ca_swap
        )
        self.ca_photo = CrossAttention(
            dim, config.heads, config.ffn_dim, config.dropout, config.ca_swap
        )
        self.ca_photo.load_state_dict(self.ca_sketch.state_dict())  # identical at init
        self.relation_net = RelationNetwork(
            dim, side, config.rn_dim, config.dropout, config.rn_token_layout
        )
        self.net = nn.ModuleDict(
            {
                "backbone": cast(nn.Module, backbone),
                "ca_sketch": self.ca_sketch,
                "ca_photo": self.ca_photo,
                "relation": self.relation_net,
            }
        )

    def _shapes(self, backbone: Any) -> tuple[int, int]:
        """Token width and patch-token count, from one forward pass of a blank image."""
        for name in (self.ret_feature, self.token_feature):
            if name not in backbone.feature_names:
                raise UserError(
                    f"zse_sbir: backbone has no feature '{name}' (it has "
                    f"{', '.join(backbone.feature_names)}); for timm models set "
                    "backbone.tokens=true, for vit_tokens backbone.patch_tokens=true"
                )
        with evaluating(backbone), torch.no_grad():
            out = backbone(torch.zeros(1, 3, backbone.input_size, backbone.input_size))
        ret, tokens = out[self.ret_feature], out[self.token_feature]
        if ret.ndim != 2 or tokens.ndim != 3 or ret.shape[-1] != tokens.shape[-1]:
            raise UserError(
                f"zse_sbir: '{self.ret_feature}' must be (B, D) and '{self.token_feature}' "
                f"(B, N, D) of the same D; got {tuple(ret.shape)} and {tuple(tokens.shape)}"
            )
        return int(tokens.shape[-1]), int(tokens.shape[1])

    def sequence(self, images: torch.Tensor) -> torch.Tensor:
        """[Ret] followed by the patch tokens, ``(B, 1 + N, D)``."""
        out = self.backbone(images)
        return torch.cat([out[self.ret_feature][:, None], out[self.token_feature]], 1)

    def cross(self, sketch: torch.Tensor, photo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both sides of each pair after cross-attention (each from the other's input)."""
        return self.ca_sketch(sketch, photo), self.ca_photo(photo, sketch)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        if batch.sketches is None or batch.sketch_labels is None:
            raise ValueError("zse_sbir needs sketches in every micro-batch (skt_factor=1)")
        c = self.config
        sketches, photos = self.sequence(batch.sketches), self.sequence(batch.photos)
        positive, negative, valid = pair_in_batch(batch.sketch_labels, batch.photo_labels)
        if not bool(valid.any()):  # every trained parameter in the graph, for DDP
            zero = sum(p.sum() for p in self.net.parameters() if p.requires_grad) * 0.0
            zero = zero + (sketches.sum() + photos.sum()) * 0.0
            return {"loss": zero, "tri": zero.detach(), "rn": zero.detach()}
        anchors = sketches[valid]
        second = sketches[self.negative_sketches(batch.sketch_labels)[valid]]
        partners = torch.cat([photos[positive[valid]], photos[negative[valid]]])
        s, p = self.cross(torch.cat([anchors, second]), partners)
        b = len(anchors)
        tri = triplet_term(s[:b, 0], p[:b, 0], p[b:, 0], c.tri_margin)
        r = self.relation_net(s[:, 1:], p[:, 1:])
        rn = relation_term(r[:b], r[b:], c.rn_target)
        loss = c.tri_weight * tri + c.rn_weight * rn
        return {"loss": loss, "tri": tri, "rn": rn}

    def negative_sketches(self, labels: torch.Tensor) -> torch.Tensor:
        """Index of each sketch's s-: its pair partner (2k <-> 2k+1) where that is of
        its class (``negative_sketch=partner``), else the sketch itself."""
        own = torch.arange(len(labels), device=labels.device)
        if self.config.negative_sketch == "anchor":
            return own
        partner = own ^ 1
        partner = torch.where(partner < len(labels), partner, own)
        return torch.where(labels[partner] == labels, partner, own)

    def stages(self) -> list[Stage]:
        groups = [
            ParamGroup("backbone", [self.net["backbone"]], self.config.backbone_lr_mult),
            ParamGroup(
                "cross_attention_and_relation", [self.ca_sketch, self.ca_photo, self.relation_net]
            ),
        ]
        settings = StageSettings.from_config(self.config)
        pair_sketches = self.config.negative_sketch == "partner"
        return [
            Stage(
                "train",
                {"net": self.net},
                self.training_step,
                settings,
                groups,
                pair_photos=True,
                pair_sketches=pair_sketches,
            )
        ]

    def model(self) -> nn.Module:
        return self.net

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        """Stage 1: the L2-normalised [Ret] of the encoder (no cross-attention)."""
        return F.normalize(self.backbone(images)[self.ret_feature].float(), dim=-1)

    def rerank_k(self) -> int | None:
        return self.config.rerank_k

    def pair_tokens(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return self.sequence(images)

    def relation(self, sketch_tokens: torch.Tensor, photo_tokens: torch.Tensor) -> torch.Tensor:
        """Stage 2: r of each (sketch, photo) pair after cross-attention."""
        s, p = self.cross(sketch_tokens, photo_tokens)
        return self.relation_net(s[:, 1:], p[:, 1:])
