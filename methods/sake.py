"""``sake``: Semantic-Aware Knowledge prEservation (Liu et al., ICCV 2019).

One network learns the seen classes from sketches and photos while it goes on predicting
what the frozen ImageNet network predicts on the same photos, so that fine-tuning does
not forget the ImageNet knowledge the unseen classes need (docs/methods/sake.md):

    x = E(pool(image))                      the retrieval embedding (``embed_dim``)
    z = W_seen x,  u = W_imnet x            seen-class and ImageNet logits
    q_i = softmax(lambda_1 * t_i)           t_i: the frozen ImageNet network's logits
    L = ce_weight * CE(z, y) + kd_weight * mean_{i in photos} sum_m -q_im log softmax(u_i)_m

E and W_imnet start from the SVD of the pretrained classifier (W = U S V^T, E = S_d V_d^T,
W_imnet = U_d), so u approximates the ImageNet logits from the first step. Written only
against the public plugin contract (``sbirbench.interfaces``), as a third party would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.errors import UserError
from sbirbench.interfaces import (
    Backbone,
    Batch,
    Method,
    MethodSetup,
    ParamGroup,
    Stage,
    StageSettings,
    TrainConfig,
)


@dataclass(frozen=True)
class SAKEConfig(TrainConfig):
    """The embedding size, the SVD start, the loss weights, and which images keep the
    ImageNet predictions (the authors' code: photos only)."""

    embed_dim: int = 512
    svd_init: bool = True
    ce_weight: float = 1.0
    kd_weight: float = 1.0
    teacher_logit_scale: float = 1.0
    kd_modalities: Literal["photo", "both"] = "photo"
    backbone_lr_mult: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim={self.embed_dim}: must be at least 1")
        for name in ("ce_weight", "kd_weight", "teacher_logit_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must not be negative")


def preservation_target(teacher_logits: torch.Tensor, scale: float) -> torch.Tensor:
    """``q = softmax(scale * t)`` row by row: what the student's ImageNet head learns."""
    return F.softmax(scale * teacher_logits.float(), dim=-1)


def preservation_loss(imagenet_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_m -q_im log softmax(u_i)_m`` over the rows given (the photos, in the
    authors' code); no gradient flows into the target. Zero for no rows."""
    if imagenet_logits.shape[0] == 0:
        return imagenet_logits.sum() * 0.0
    log_p = F.log_softmax(imagenet_logits.float(), dim=-1)
    return -(target.detach() * log_p).sum(-1).mean()


def svd_initialise(weight: torch.Tensor, embedding: nn.Linear, imagenet: nn.Linear) -> str:
    """Factor the pretrained classifier ``W`` (classes x features) at rank ``d``:
    ``embedding.weight = S_d V_d^T``, ``imagenet.weight = U_d``. Biases keep PyTorch's
    initialisation, as in the authors' code. Returns how the heads started."""
    d, rank = embedding.out_features, min(weight.shape)
    if d > rank:
        raise UserError(
            f"sake: embed_dim={d} is more than the rank {rank} of the ImageNet classifier "
            f"({weight.shape[0]} x {weight.shape[1]}); use embed_dim <= {rank} or "
            "svd_init=false"
        )
    u, s, vh = torch.linalg.svd(weight.detach().float(), full_matrices=False)
    with torch.no_grad():
        embedding.weight.copy_(s[:d, None] * vh[:d])
        imagenet.weight.copy_(u[:, :d])
    return f"rank-{d} SVD of the backbone's ImageNet classifier ({weight.shape[0]} classes)"


def imagenet_classifier(backbone: Backbone, method: str) -> nn.Linear:
    """The backbone's ImageNet classifier, or a one-line error naming what ``method``
    needs."""
    classifier = getattr(backbone, "imagenet_classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise UserError(
            f"{method} needs a backbone with its ImageNet classifier: ImageNet weights and "
            f"--set backbone.imagenet_head=true (the {method} presets set both)"
        )
    return classifier


class SAKENet(nn.Module):
    """Backbone, embedding layer E, and the seen-class and ImageNet heads on E's output."""

    def __init__(self, backbone: Backbone, num_classes: int, embed_dim: int, svd_init: bool):
        super().__init__()
        classifier = imagenet_classifier(backbone, "sake")
        self.backbone: Any = backbone
        classifier.requires_grad_(False)  # the student uses its SVD, not the layer itself
        self.feature = backbone.default_feature
        self.embedding = nn.Linear(backbone.feature_dim, embed_dim)
        self.seen = nn.Linear(embed_dim, num_classes)
        self.imagenet = nn.Linear(embed_dim, classifier.out_features)
        self.heads_init = "PyTorch default"
        if svd_init:
            self.heads_init = svd_initialise(classifier.weight, self.embedding, self.imagenet)

    def describe_init(self) -> dict[str, str]:
        return {"embedding_and_imagenet_head": self.heads_init, "seen_head": "PyTorch default"}

    def heads(self) -> list[nn.Module]:
        return [self.embedding, self.seen, self.imagenet]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.embedding(self.backbone(images)[self.feature])
        return {"embedding": x, "logits": self.seen(x), "imagenet_logits": self.imagenet(x)}


class SAKE(Method):
    """Cross-entropy on the seen classes plus preservation of the ImageNet predictions."""

    Config = SAKEConfig
    description = "Semantic-Aware Knowledge prEservation (ICCV 2019)"
    joint_pass = True  # one forward pass of photos and sketches (batchnorm=joint allowed)

    def __init__(self, config: SAKEConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        self.net = SAKENet(
            setup.backbone.build(), setup.num_classes, config.embed_dim, config.svd_init
        )
        # the frozen ImageNet network: the same weights, never trained
        self.teacher: nn.Module | None = (
            cast(nn.Module, setup.backbone.build()) if setup.training else None
        )

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Sketches and photos in one forward pass (BatchNorm sees the mixed batch, as in
        the authors' code); the teacher sees only the images whose predictions are kept."""
        images, labels, keep = self.joined(batch)
        ce, kd = self.sake_terms(self.net(images), images, labels, keep)
        c = self.config
        return {"loss": c.ce_weight * ce + c.kd_weight * kd, "ce": ce, "kd": kd}

    def joined(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's images and labels, photos first, and which images keep their
        ImageNet predictions (``kd_modalities``)."""
        parts = batch.parts()
        images = torch.cat([images for _, images, _ in parts])
        labels = torch.cat([labels for _, _, labels in parts])
        both = self.config.kd_modalities == "both"
        keep = torch.cat([torch.full((len(lab),), both or m == "photo") for m, _, lab in parts])
        return images, labels, keep.to(images.device)

    def sake_terms(
        self,
        out: dict[str, torch.Tensor],
        images: torch.Tensor,
        labels: torch.Tensor,
        keep: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_CE, L_KD)`` of the network's outputs ``out`` on ``images``."""
        assert self.teacher is not None, "sake was built without its teacher (eval only)"
        with torch.no_grad():
            teacher_logits = self.teacher(images[keep])["imagenet_logits"]
        ce = F.cross_entropy(out["logits"].float(), labels)
        target = preservation_target(teacher_logits, self.config.teacher_logit_scale)
        return ce, preservation_loss(out["imagenet_logits"][keep], target)

    def stages(self) -> list[Stage]:
        groups = [
            ParamGroup("backbone", [self.net.backbone], self.config.backbone_lr_mult),
            ParamGroup("head", self.net.heads()),
        ]
        frozen = {"teacher": self.teacher} if self.teacher is not None else {}
        return [
            Stage(
                "train",
                {"net": self.net},
                self.training_step,
                StageSettings.from_config(self.config),
                groups,
                frozen,
            )
        ]

    def model(self) -> nn.Module:
        return self.net

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        """E's output, L2-normalised (the authors rank by Euclidean distance between
        normalised features, the same order as cosine similarity)."""
        return F.normalize(self.net(images)["embedding"].float(), dim=-1)
