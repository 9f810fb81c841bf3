"""``pskd``: Prototype-based Selective Knowledge Distillation (Wang et al., ACM MM 2022).

Stage ``teacher``: backbone + fusion head trained with label-smoothed cross-entropy on
photos and sketches. Stage ``student``: the same architecture, initialised again from the
pretrained weights; with the teacher frozen, per sub-batch of one modality

    L = w_skd * L_SKD + w_ce * L_CE + w_ila * L_ILA

where the prototypes are the rows of the student's classifier, the class correlation
matrix M is their cosine similarity (no gradient), and the teacher's logits are
reconstructed as z_T * M[y] (or z_T + M[y]) before the softmax (``methods/pskd_losses.py``).
Retrieval uses the raw fusion-token output (ranked by cosine, so L2-normalised; hashed
raw). The specification is ``shared/docs/PSKD.md``; its [choice] options are Config fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sbirbench.interfaces import (
    Batch,
    Method,
    MethodSetup,
    Stage,
    StageSettings,
)

from .losses import label_smoothed_ce
from .pskd_losses import correlation_matrix, ila_loss, reconstruct_teacher, skd_loss
from .teacher import DistillConfig, head_groups, student_and_teacher, teacher_stages


@dataclass(frozen=True)
class PSKDConfig(DistillConfig):
    """PSKD's hyper-parameters: the published schedule's defaults, and the ablation
    switches."""

    backbone: str = "vit_tokens"
    epochs: int = 50
    batch_size: int = 128
    accum_steps: int = 16
    warmup_epochs: float = 5.0
    teacher_batch_size: int = 256
    teacher_accum_steps: int = 16
    teacher_warmup_epochs: float = 5.0
    distill: bool = True
    selection: bool = True
    ila: bool = True
    combine: Literal["multiply", "add"] = "multiply"
    ila_same_class: Literal["negative", "ignore"] = "negative"
    skd_weight: float = 1.0
    ce_weight: float = 1.0
    ila_weight: float = 1.0
    # The release evaluates at 224 x 224, bilinear, without antialiasing.
    eval_interpolation: Literal["bilinear", "bicubic", "nearest"] | None = "bilinear"
    eval_antialias: bool = False


class PSKD(Method):
    """Teacher stage, prototypes, selective distillation."""

    Config = PSKDConfig
    description = "Prototype-based Selective Knowledge Distillation (ACM MM 2022)"

    def __init__(self, config: PSKDConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        self.student, self.teacher = student_and_teacher(config, setup, teacher=config.distill)

    def stages(self) -> list[Stage]:
        stages = teacher_stages(self.teacher, self.config)
        frozen = {"teacher": self.teacher} if self.teacher is not None else {}
        stages.append(
            Stage(
                "student",
                {"student": self.student},
                self.student_step,
                StageSettings.from_config(self.config),
                head_groups(self.student, self.config.backbone_lr_mult),
                frozen,
            )
        )
        return stages

    def student_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """L_SKD + L_CE + L_ILA per modality sub-batch (weights and switches from config)."""
        c = self.config
        parts: dict[str, torch.Tensor] = {}
        prototypes = self.student.head.classifier.weight
        for _, images, labels in batch.parts():
            out = self.student(images)
            logits = out["logits"]
            terms = {"ce": label_smoothed_ce(logits, labels, c.smoothing)}
            if c.ila:
                terms["ila"] = ila_loss(
                    prototypes, out["embedding"], labels, c.smoothing, c.ila_same_class
                )
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(images)["logits"].float()
                target = teacher_logits
                if c.selection:
                    target = reconstruct_teacher(
                        teacher_logits, correlation_matrix(prototypes), labels, c.combine
                    )
                terms["skd"] = skd_loss(logits, target)
            for name, value in terms.items():
                parts[name] = parts.get(name, 0) + value
        weights = {"skd": c.skd_weight, "ce": c.ce_weight, "ila": c.ila_weight}
        total = sum(weights[name] * value for name, value in parts.items())
        return {"loss": total, **parts}

    def model(self) -> nn.Module:
        return self.student

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return self.student.embed(images, self.config.embed)
