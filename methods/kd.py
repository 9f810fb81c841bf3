"""``kd``: plain knowledge distillation from a frozen fine-tuned teacher, without
prototypes or selection, so PSKD's gain can be measured against it.

Stage ``teacher`` is PSKD's (label-smoothed cross-entropy); stage ``student`` trains a
network initialised again from the pretrained weights with
``ce_weight * L_CE + kd_weight * T^2 * KL(softmax(z_T / T) || softmax(z_S / T))``.
With T = 1 this is PSKD with ``selection=false`` and ``ila=false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sbirbench.interfaces import Batch, Method, MethodSetup, Stage, StageSettings, TrainConfig

from .heads import HeadedBackbone
from .losses import label_smoothed_ce
from .teacher import head_groups, load_teacher, teacher_stage


@dataclass(frozen=True)
class KDConfig(TrainConfig):
    """The teacher stage's fields match PSKD's; ``temperature`` and the loss weights."""

    teacher_epochs: int = 5
    teacher_batch_size: int = 64
    teacher_accum_steps: int = 1
    teacher_warmup_epochs: float = 1.0
    teacher_checkpoint: str | None = None
    feature: str | None = None
    head_hidden: int = 2048
    head_dim: int = 256
    smoothing: float = 0.1
    backbone_lr_mult: float = 0.1
    temperature: float = 1.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    embed: str = "feature"


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Hinton's distillation loss: ``T^2 * KL(p_T || p_S)`` at temperature ``T``."""
    t = temperature
    target = F.softmax(teacher_logits.detach().float() / t, dim=-1)
    return F.kl_div(F.log_softmax(student_logits.float() / t, dim=-1), target,
                    reduction="batchmean") * t * t


class KD(Method):
    """A teacher stage, then a student distilled from it."""

    Config = KDConfig
    description = "Plain knowledge distillation from a frozen fine-tuned teacher"

    def __init__(self, config: KDConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        heads = dict(feature=config.feature, hidden=config.head_hidden, out=config.head_dim)
        self.student = HeadedBackbone(setup.backbone.build(), setup.num_classes, **heads)
        self.teacher = HeadedBackbone(setup.backbone.build(), setup.num_classes, **heads)
        if config.teacher_checkpoint:
            load_teacher(self.teacher, Path(config.teacher_checkpoint))

    def student_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        c = self.config
        ce = kd = 0
        for _, images, labels in batch.parts():
            logits = self.student(images)["logits"]
            with torch.no_grad():
                teacher_logits = self.teacher(images)["logits"]
            ce = ce + label_smoothed_ce(logits, labels, c.smoothing)
            kd = kd + kd_loss(logits, teacher_logits, c.temperature)
        return {"loss": c.ce_weight * ce + c.kd_weight * kd, "ce": ce, "kd": kd}

    def stages(self) -> list[Stage]:
        stages = [] if self.config.teacher_checkpoint else [teacher_stage(self.teacher,
                                                                          self.config)]
        stages.append(Stage("student", {"student": self.student}, self.student_step,
                            StageSettings.from_config(self.config),
                            head_groups(self.student, self.config.backbone_lr_mult),
                            {"teacher": self.teacher}))
        return stages

    def model(self) -> nn.Module:
        return self.student

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return self.student.embed(images, self.config.embed)
