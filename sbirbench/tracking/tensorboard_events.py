"""``--tracker tensorboard``: torch's ``SummaryWriter`` into ``<run>/tensorboard/``.

Scalars ``<stage>/loss/<term>``, ``<stage>/lr``, ``<stage>/images_per_second`` against
the epoch counted over all stages, the metrics as ``eval/<metric>``, and the
configuration as text. ``tensorboard --logdir runs/`` shows every run side by side.
"""

from __future__ import annotations

import json
from typing import Any

from sbirbench.tracking import TrackedRun, optional_import, scalars


class TensorBoardTracker:
    def __init__(self, run: TrackedRun) -> None:
        optional_import("tensorboard", "tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run.folder / "tensorboard"))
        self.last = 0

    def start(self, config: dict[str, Any]) -> None:
        text = json.dumps(config, indent=2, default=str)
        self.writer.add_text("config", f"```\n{text}\n```")

    def epoch(self, step: int, record: dict[str, Any]) -> None:
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, step)
        self.last = step

    def finish(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"eval/{name}", value, self.last)

    def close(self) -> None:
        self.writer.close()


def make(run: TrackedRun) -> TensorBoardTracker:
    return TensorBoardTracker(run)
