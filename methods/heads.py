"""A backbone with the TVT/PSKD fusion head: MLP, L2 normalisation, linear classifier."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.interfaces import Backbone


def projection_mlp(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    """DINO's projection MLP ``in -> hidden -> hidden -> out`` (GELU), with PyTorch's
    initialisation; :func:`dino_init` gives it DINO's."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
        nn.Linear(hidden, out),
    )  # fmt: skip


def dino_init(layers: Iterable[nn.Module]) -> None:
    """DINO's head initialisation of the linear layers: truncated normal (std 0.02),
    zero biases."""
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)


class FusionHead(nn.Module):
    """MLP ``in -> hidden -> hidden -> out`` (GELU), L2-normalised, then a linear classifier
    over the seen classes; its weight rows are the class prototypes.

    Initialisation as in the TVT/PSKD release: the MLP from DINO's projection head when
    the backbone's weights had one (:meth:`load_projection`), else truncated normal (std
    0.02) with zero biases, DINO's own head initialisation; the classifier truncated
    normal (std 0.02) with a zero bias.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 2048, out: int = 256) -> None:
        super().__init__()
        self.mlp = projection_mlp(in_dim, hidden, out)
        self.classifier = nn.Linear(out, num_classes)
        dino_init([*self.mlp, self.classifier])

    def load_projection(self, tensors: dict[str, torch.Tensor]) -> str:
        """Start the MLP from DINO's projection head (keys ``0/2/4.weight|bias``) when its
        shapes fit; returns how the MLP was initialised."""
        own = self.mlp.state_dict()
        if not tensors:
            return "trunc-normal (the backbone's weights have no projection head)"
        if set(tensors) != set(own) or any(tensors[k].shape != own[k].shape for k in own):
            found = ", ".join(
                f"{k} {tuple(v.shape)}" for k, v in sorted(tensors.items()) if k.endswith("weight")
            )
            return f"trunc-normal (the weights' projection head does not fit: {found})"
        self.mlp.load_state_dict(tensors)
        return "DINO projection head (head.mlp.0/2/4 of the weights)"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, embedding)``; the embedding is L2-normalised."""
        embedding = F.normalize(self.mlp(x), dim=-1)
        return self.classifier(embedding), embedding


class HeadedBackbone(nn.Module):
    """A backbone and a fusion head on one of its named features."""

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        *,
        feature: str | None = None,
        hidden: int = 2048,
        out: int = 256,
    ) -> None:
        super().__init__()
        # a Backbone and an nn.Module (trained, in param groups); the protocol cannot say both
        self.backbone: Any = backbone
        self.feature = feature or backbone.default_feature
        if self.feature not in backbone.feature_names:
            from sbirbench.errors import UserError

            raise UserError(
                f"the backbone has no feature '{self.feature}'; it has "
                f"{', '.join(backbone.feature_names)}"
            )
        self.head = FusionHead(backbone.feature_dim, num_classes, hidden, out)
        self.head_init = self.head.load_projection(getattr(backbone, "projection_head", {}))

    def describe_init(self) -> dict[str, str]:
        """How the head started (recorded in results)."""
        return {"fusion_mlp": self.head_init, "classifier": "trunc-normal (std 0.02), zero bias"}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backbone features plus ``logits`` and ``embedding`` of the head."""
        features = self.backbone(images)
        logits, embedding = self.head(features[self.feature])
        return {**features, "logits": logits, "embedding": embedding}

    def check_embed(self, what: str) -> None:
        """Raise a one-line error unless ``what`` names retrieval features :meth:`embed`
        can return; called when a method is built, so a typo stops a run before training."""
        if what not in ("feature", "head", *self.backbone.feature_names):
            from sbirbench.errors import UserError

            raise UserError(
                f"embed={what}: expected feature, head or a backbone feature "
                f"({', '.join(self.backbone.feature_names)})"
            )

    def embed(self, images: torch.Tensor, what: str = "feature") -> torch.Tensor:
        """Retrieval features: the raw backbone feature the head sits on (``feature``),
        another named backbone feature, or the head's L2-normalised embedding (``head``).
        Raw features are not normalised here: cosine similarity does that, and PCA+ITQ
        hashing is fitted on the raw output, as in the TVT/PSKD evaluation code."""
        if what == "head":
            return self(images)["embedding"]
        features = self.backbone(images)
        return features[self.feature if what == "feature" else what].float()
