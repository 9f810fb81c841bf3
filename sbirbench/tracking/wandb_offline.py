"""``--tracker wandb``: Weights & Biases, offline unless the user configures otherwise.

``WANDB_MODE`` chooses the mode (``offline`` when unset, so nothing leaves the machine
without the user asking); the run's files go to ``<run>/wandb/`` and ``wandb sync
<run>/wandb/offline-run-*`` uploads them later. The project is ``$WANDB_PROJECT`` or
``sbirbench``, the group the benchmark, the name the run folder's, and the id is fixed
by the run folder so that a resumed run continues the same W&B run online. Offline,
wandb does not continue a run: each process of a resumed run writes its own
``offline-run-*`` folder under that id (wandb issues #2423, #4624), to be synced in order.
The configuration is the run's full configuration; each epoch is one ``log`` at the
epoch counted over all stages, and the metrics go to the summary as ``eval/<metric>``.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from sbirbench.errors import UserError
from sbirbench.tracking import TrackedRun, optional_import, scalars


def run_key(run: TrackedRun) -> str:
    """A W&B run id that is the same every time this run folder is tracked."""
    digest = hashlib.sha256(str(run.folder.resolve()).encode()).hexdigest()[:8]
    return f"{run.run_id}-{digest}"


class WandbTracker:
    def __init__(self, run: TrackedRun) -> None:
        self.wandb = optional_import("wandb", "wandb", "wandb")
        self.run = run
        self.handle: Any = None
        self.last = 0
        self.failed = True

    def start(self, config: dict[str, Any]) -> None:
        directory = self.run.folder
        try:
            self.handle = self.wandb.init(
                project=os.environ.get("WANDB_PROJECT", "sbirbench"),
                group=self.run.experiment,
                name=self.run.run_id,
                id=run_key(self.run),
                resume="allow",
                dir=str(directory),
                mode=os.environ.get("WANDB_MODE", "offline"),
                config=config,
                settings=self.wandb.Settings(silent=True, console="off"),
            )
        except Exception as exc:  # wandb raises many kinds (auth, network, settings)
            raise UserError(f"wandb: {str(exc).splitlines()[0]}") from None

    def epoch(self, step: int, record: dict[str, Any]) -> None:
        self.handle.log(scalars(record), step=step)
        self.last = step

    def finish(self, metrics: dict[str, float]) -> None:
        self.handle.summary.update({f"eval/{k}": float(v) for k, v in metrics.items()})
        self.failed = False

    def close(self) -> None:
        if self.handle is not None:
            self.handle.finish(exit_code=1 if self.failed else 0)


def make(run: TrackedRun) -> WandbTracker:
    return WandbTracker(run)
