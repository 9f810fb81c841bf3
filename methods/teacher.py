"""The teacher stage shared by the distillation methods (``pskd``, ``kd``): a backbone
with a fusion head, fine-tuned with label-smoothed cross-entropy on both modalities."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sbirbench.errors import UserError
from sbirbench.interfaces import Batch, MethodSetup, ParamGroup, Stage, StageSettings, TrainConfig

from .heads import HeadedBackbone
from .losses import label_smoothed_ce, loss_sum


@dataclass(frozen=True)
class DistillConfig(TrainConfig):
    """What the methods with a teacher stage share; ``epochs``, ``batch_size`` etc. are
    the student's, ``teacher_*`` the teacher's."""

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
    embed: str = "feature"

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            teacher_settings(self)
        except ValueError as exc:
            raise ValueError(f"teacher stage settings: {exc} (the teacher_* fields)") from None


def student_and_teacher(
    config: DistillConfig,
    setup: MethodSetup,
    *,
    teacher: bool = True,
) -> tuple[HeadedBackbone, HeadedBackbone | None]:
    """Two networks from the pretrained weights (the student is not the teacher's copy);
    the teacher loaded from ``teacher_checkpoint`` when one is given. Rebuilt only to
    embed (``setup.training`` False), there is no teacher."""

    def network() -> HeadedBackbone:
        return HeadedBackbone(
            setup.backbone.build(),
            setup.num_classes,
            feature=config.feature,
            hidden=config.head_hidden,
            out=config.head_dim,
        )

    student = network()
    student.check_embed(config.embed)
    other = network() if teacher and setup.training else None
    if other is not None and config.teacher_checkpoint:
        load_teacher(other, Path(config.teacher_checkpoint))
    return student, other


def head_groups(net: HeadedBackbone, backbone_lr_mult: float) -> list[ParamGroup]:
    """The backbone at ``backbone_lr_mult`` times the heads' learning rate."""
    return [
        ParamGroup("backbone", [net.backbone], backbone_lr_mult),
        ParamGroup("head", [net.head]),
    ]


def teacher_settings(config: DistillConfig) -> StageSettings:
    """The teacher's own epochs, batch, accumulation and warm-up (``teacher_*`` fields),
    everything else from ``config``."""
    return StageSettings.from_config(
        config,
        epochs=config.teacher_epochs,
        batch_size=config.teacher_batch_size,
        accum_steps=config.teacher_accum_steps,
        warmup_epochs=config.teacher_warmup_epochs,
    )


def teacher_stage(teacher: HeadedBackbone, config: DistillConfig) -> Stage:
    """Stage ``teacher``: label-smoothed cross-entropy with :func:`teacher_settings`."""
    settings = teacher_settings(config)

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        ce = loss_sum(
            label_smoothed_ce(teacher(images)["logits"], labels, config.smoothing)
            for _, images, labels in batch.parts()
        )
        return {"loss": ce, "ce": ce}

    key = {
        "stage": "teacher-ce/1",
        "feature": teacher.feature,
        "settings": asdict(settings),
        **{
            f: getattr(config, f)
            for f in ("head_hidden", "head_dim", "smoothing", "backbone_lr_mult")
        },
    }
    return Stage(
        "teacher",
        {"teacher": teacher},
        step,
        settings,
        head_groups(teacher, config.backbone_lr_mult),
        reuse_key=key,
    )


def teacher_stages(teacher: HeadedBackbone | None, config: DistillConfig) -> list[Stage]:
    """The teacher stage, unless the teacher comes from ``teacher_checkpoint`` or the
    student trains for 0 epochs (an untrained student never asks the teacher)."""
    if teacher is None or config.teacher_checkpoint or config.epochs == 0:
        return []
    return [teacher_stage(teacher, config)]


def load_teacher(teacher: HeadedBackbone, path: Path) -> None:
    """Teacher weights from a run's ``stages/teacher.pt``, a ``ce`` run's
    ``checkpoint.pt``, or a plain state dict of the network."""
    from sbirbench.runtime import checkpoint

    saved = checkpoint.load(path)
    if "modules" in saved and "teacher" in saved["modules"]:
        state = saved["modules"]["teacher"]
    elif saved.get("format") == checkpoint.MODEL_FORMAT:
        state = saved["state"]
    else:
        state = saved
    try:
        teacher.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(
            f"teacher checkpoint {path} does not fit this teacher: {str(exc).splitlines()[0][:200]}"
        ) from None
