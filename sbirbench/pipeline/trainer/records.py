"""What the trainer keeps count of: where training is, the running sums of an epoch, and
what each stage cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Position:
    """Where training is: the stage, the epoch in it, and optimiser steps in the epoch."""

    stage: int = 0
    epoch: int = 0
    step: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"stage": self.stage, "epoch": self.epoch, "step": self.step}


@dataclass
class StageReport:
    """The training time and images of one stage (0 when reused or already done)."""

    name: str
    seconds: float = 0.0
    images: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


@dataclass
class Tally:
    """Loss sums, steps, images and seconds of the epoch so far (kept in a mid-epoch
    checkpoint, so a resumed epoch's record covers the whole epoch)."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    images: int = 0
    seconds: float = 0.0
    lr: float = 0.0

    @classmethod
    def restore(cls, snapshot: dict[str, Any] | None) -> Tally:
        return cls(**snapshot) if snapshot else cls()

    def snapshot(self) -> dict[str, Any]:
        return {
            "sums": dict(self.sums),
            "count": self.count,
            "images": self.images,
            "seconds": self.seconds,
            "lr": self.lr,
        }

    def add(self, step_losses: dict[str, torch.Tensor]) -> None:
        # One host synchronisation per step (the step's checks already needed one).
        values = torch.stack(list(step_losses.values())).cpu().tolist()
        for key, value in zip(step_losses, values, strict=True):
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}

    def record(self, stage: str, epoch: int, world: int) -> dict[str, Any]:
        return {
            "stage": stage,
            "epoch": epoch + 1,
            "steps": self.count,
            "lr": self.lr,
            "losses": self.means(),
            "images_per_second": self.images * world / self.seconds if self.seconds else 0.0,
            "seconds": self.seconds,
        }
