"""Experiment tracking (``sbirbench run --tracker NAME``, repeatable), from rank 0 only.

Each tracker gets the run's full configuration when it starts, one record per trained
epoch (every loss term, the learning rate, throughput and time, as ``history.jsonl``
holds them), and the evaluation metrics at the end:

- ``jsonl``: ``<run>/tracking.jsonl``, one JSON object per event; needs nothing.
- ``tensorboard``: event files under ``<run>/tensorboard/`` (``pip install tensorboard``),
  scalars ``<stage>/loss/<term>``, ``<stage>/lr``, ``<stage>/images_per_second`` against
  the epoch counted over all stages, the metrics as ``eval/<metric>``, and the
  configuration as text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sbirbench.errors import UserError

TRACKERS = ("jsonl", "tensorboard")


class Tracker(Protocol):
    def start(self, config: dict[str, Any]) -> None: ...

    def epoch(self, step: int, record: dict[str, Any]) -> None: ...

    def finish(self, metrics: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """An epoch's history record as named scalars."""
    stage = record["stage"]
    out = {f"{stage}/loss/{k}": float(v) for k, v in record["losses"].items()}
    out[f"{stage}/lr"] = float(record["lr"])
    out[f"{stage}/images_per_second"] = float(record["images_per_second"])
    out[f"{stage}/seconds"] = float(record["seconds"])
    return out


class JsonlTracker:
    """Events appended to ``<run>/tracking.jsonl`` (a resumed run appends to it)."""

    def __init__(self, run: Path) -> None:
        self.path = run / "tracking.jsonl"

    def _write(self, event: str, **fields: Any) -> None:
        line = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(line, default=str) + "\n")

    def start(self, config: dict[str, Any]) -> None:
        self._write("config", config=config)

    def epoch(self, step: int, record: dict[str, Any]) -> None:
        self._write("epoch", step=step, stage=record["stage"], values=scalars(record))

    def finish(self, metrics: dict[str, float]) -> None:
        self._write("metrics", metrics=metrics)

    def close(self) -> None:
        pass


class TensorBoardTracker:
    """torch's ``SummaryWriter`` into ``<run>/tensorboard/``."""

    def __init__(self, run: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError(
                "--tracker tensorboard needs tensorboard: pip install 'sbirbench[track]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(run / "tensorboard"))
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


def make_trackers(names: Sequence[str], run: Path) -> list[Tracker]:
    """The trackers asked for (each once); a missing extra is one line naming it."""
    makers: dict[str, type[JsonlTracker] | type[TensorBoardTracker]] = {
        "jsonl": JsonlTracker,
        "tensorboard": TensorBoardTracker,
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise UserError(f"unknown tracker '{unknown[0]}'; use one of {', '.join(TRACKERS)}")
    return [makers[name](run) for name in dict.fromkeys(names)]
