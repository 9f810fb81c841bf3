"""The training schedule every stage shares, the config every training method extends
(both re-exported by :mod:`sbirbench.interfaces`), and the per-step cosine the engine
follows.

torch's LRScheduler classes schedule only the learning rate; the weight decay follows a
cosine too, so both are plain functions of the step (also nothing to checkpoint)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal


@dataclass(frozen=True)
class Schedule:
    """How one training stage is optimised (the fields every method's config shares).

    ``batch_size`` counts photos per optimiser step per process; each step is split into
    ``accum_steps`` micro-batches, and a sketch micro-batch of the same size joins every
    ``skt_factor``-th one (0: photos only). The peak learning rate is
    ``lr * global_batch / lr_ref_batch``, reached after ``warmup_epochs`` of linear
    warm-up and followed by a cosine to ``min_lr``; the weight decay follows a cosine from
    ``weight_decay`` to ``weight_decay_end`` (None: constant).

    ``batchnorm`` decides which statistics the BatchNorm layers of the trained modules
    normalise with. ``frozen`` keeps their running statistics (a pretrained backbone's
    ImageNet ones) in training as at test, while their affine parameters train, as the
    PSKD and TVT releases train (eval-mode students). ``joint`` trains them in train
    mode, which only a method that runs sketches and photos through the backbone in one
    forward pass may choose (``Method.joint_pass``: SAKE's and DSN's releases).
    ``train`` is train mode under whatever passes the method makes: for a backbone
    trained from scratch, which has no statistics to keep, and to reproduce results from
    before 2026-12-08; with separate photo and sketch passes it tests the network under
    statistics it never trained under. ``auto`` (the default) is resolved when a run is:
    ``frozen`` for a backbone with pretrained weights, else ``train``.
    """

    epochs: int = 10
    batch_size: int = 64
    accum_steps: int = 1
    lr: float = 5e-4
    lr_ref_batch: int = 256
    min_lr: float = 1e-6
    warmup_epochs: float = 1.0
    weight_decay: float = 0.04
    weight_decay_end: float | None = 0.4
    clip_grad: float | None = 3.0
    clip_mode: Literal["param", "global"] = "param"
    skt_factor: int = 2
    augment: Literal["dino", "basic", "none"] = "dino"
    batchnorm: Literal["auto", "frozen", "joint", "train"] = "auto"

    def __post_init__(self) -> None:
        check_schedule(self)

    @classmethod
    def from_config(cls, config: Schedule, **changes: Any) -> Schedule:
        """The schedule fields of a method's config (a Schedule subclass), with ``changes``."""
        values = {f.name: getattr(config, f.name) for f in fields(Schedule)}
        return Schedule(**{**values, **changes})


#: The settings of one training stage are a :class:`Schedule`.
StageSettings = Schedule


@dataclass(frozen=True)
class TrainConfig(Schedule):
    """The config every training method shares: a :class:`Schedule`, the backbone, and
    the evaluation resize (None keeps the interpolation of the backbone's weights)."""

    backbone: str = "vit_tokens_tiny"
    eval_interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    eval_antialias: bool = True


def check_schedule(settings: Schedule) -> None:
    """Raise ``ValueError`` naming the first out-of-range field of a schedule. Run when a
    config is built, so a bad value stops a run before any training (the config builder
    turns it into a one-line error)."""
    at_least = {
        "epochs": 0,
        "batch_size": 1,
        "accum_steps": 1,
        "lr_ref_batch": 1,
        "skt_factor": 0,
        "min_lr": 0,
        "warmup_epochs": 0,
        "weight_decay": 0,
        "weight_decay_end": 0,
    }
    for item in fields(settings):
        value = getattr(settings, item.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{item.name}={value}: must be a finite number")
    for name, low in at_least.items():
        value = getattr(settings, name, None)
        if value is not None and value < low:
            raise ValueError(f"{name}={value}: must be at least {low}")
    for name in ("lr", "clip_grad"):
        value = getattr(settings, name, None)
        if value is not None and value <= 0:
            raise ValueError(f"{name}={value}: must be positive")
    if settings.batch_size % settings.accum_steps:
        raise ValueError(
            f"batch_size {settings.batch_size} is not a multiple of accum_steps "
            f"{settings.accum_steps}"
        )


def cosine(
    step: int, total: int, start: float, end: float, warmup: int = 0, warmup_start: float = 0.0
) -> float:
    """DINO's ``cosine_scheduler`` at ``step``: ``warmup`` steps linear from
    ``warmup_start`` to ``start`` (both ends included), then a cosine from ``start``
    towards ``end`` over the remaining steps."""
    warmup = min(warmup, total)
    if step < warmup:
        if warmup == 1:
            return start
        return warmup_start + (start - warmup_start) * step / (warmup - 1)
    span = max(total - warmup, 1)
    progress = (step - warmup) / span
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))


__all__ = ["Schedule", "StageSettings", "TrainConfig", "check_schedule", "cosine"]
