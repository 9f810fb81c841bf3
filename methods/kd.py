"""``kd``: plain knowledge distillation from a frozen fine-tuned teacher, without
prototypes or selection, so PSKD's gain can be measured against it.

Stage ``teacher`` is PSKD's (label-smoothed cross-entropy); stage ``student`` trains a
network initialised again from the pretrained weights with
``ce_weight * L_CE + kd_weight * T^2 * KL(softmax(z_T / T) || softmax(z_S / T))``.
With T = 1 this is PSKD with ``selection=false`` and ``ila=false``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.interfaces import Batch, Method, MethodSetup, Stage, StageSettings

from .losses import label_smoothed_ce, loss_sum
from .teacher import DistillConfig, head_groups, student_and_teacher, teacher_stages


@dataclass(frozen=True)
class KDConfig(DistillConfig):
    """The distillation temperature and the loss weights (the rest as PSKD's)."""

    temperature: float = 1.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton's distillation loss: ``T^2 * KL(p_T || p_S)`` at temperature ``T``."""
    t = temperature
    target = F.softmax(teacher_logits.detach().float() / t, dim=-1)
    return (
        F.kl_div(F.log_softmax(student_logits.float() / t, dim=-1), target, reduction="batchmean")
        * t
        * t
    )


class KD(Method):
    """A teacher stage, then a student distilled from it."""

    Config = KDConfig
    description = "Plain knowledge distillation from a frozen fine-tuned teacher"

    def __init__(self, config: KDConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        self.student, self.teacher = student_and_teacher(config, setup)

    def student_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        assert self.teacher is not None, "kd was built without its teacher (eval only)"
        ce_terms: list[torch.Tensor] = []
        kd_terms: list[torch.Tensor] = []
        for _, images, labels in batch.parts():
            logits = self.student(images)["logits"]
            with torch.no_grad():
                teacher_logits = self.teacher(images)["logits"]
            ce_terms.append(label_smoothed_ce(logits, labels, c.smoothing))
            kd_terms.append(kd_loss(logits, teacher_logits, c.temperature))
        ce, kd = loss_sum(ce_terms), loss_sum(kd_terms)
        return {"loss": c.ce_weight * ce + c.kd_weight * kd, "ce": ce, "kd": kd}

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

    def model(self) -> nn.Module:
        return self.student

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return self.student.embed(images, self.config.embed)
