"""Experiment tracking (``sbirbench run --tracker NAME``, repeatable), from rank 0 only.

Each tracker gets the run's full configuration when it starts, one record per trained
epoch (every loss term, the learning rate, throughput and time, as ``history.jsonl``
holds them) and the evaluation metrics at the end. A resumed run continues the same
tracked run. The trackers (each in its own module, imported only when asked for):

- ``jsonl``: ``<run>/tracking.jsonl``, one JSON object per event; needs nothing.
- ``tensorboard``: event files under ``<run>/tensorboard/`` (``[tensorboard]`` extra).
- ``mlflow``: one MLflow run per sbirbench run, in the experiment named after the
  benchmark, in ``$MLFLOW_TRACKING_URI`` or else the SQLite store
  ``<out>/mlflow.db`` shared by every run under ``--out`` (``[mlflow]`` extra).
- ``wandb``: Weights & Biases, offline into ``<run>/wandb/`` unless ``WANDB_MODE`` says
  otherwise (``[wandb]`` extra); ``wandb sync`` uploads it later.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sbirbench.errors import UserError

#: Tracker name -> module under sbirbench.tracking, and the extra that installs it.
TRACKERS = {
    "jsonl": ("jsonl", None),
    "tensorboard": ("tensorboard_events", "tensorboard"),
    "mlflow": ("mlflow_store", "mlflow"),
    "wandb": ("wandb_offline", "wandb"),
}


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker needs to know about the run it logs."""

    folder: Path  # the run folder
    out: Path  # the runs folder (--out) the run folder is under
    run_id: str
    experiment: str  # the benchmark (or data set) name


class Tracker(Protocol):
    def start(self, config: dict[str, Any]) -> None: ...

    def epoch(self, step: int, record: dict[str, Any]) -> None: ...

    def finish(self, metrics: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """An epoch's history record as named scalars (``<stage>/loss/<term>``, ``<stage>/lr``,
    ``<stage>/images_per_second``, ``<stage>/seconds``)."""
    stage = record["stage"]
    out = {f"{stage}/loss/{k}": float(v) for k, v in record["losses"].items()}
    out[f"{stage}/lr"] = float(record["lr"])
    out[f"{stage}/images_per_second"] = float(record["images_per_second"])
    out[f"{stage}/seconds"] = float(record["seconds"])
    return out


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested configuration as dotted keys (``method_config.epochs``)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def optional_import(module: str, tracker: str, extra: str) -> Any:
    """An optional tracker library, or one line naming the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"--tracker {tracker} needs {module}: pip install 'sbirbench[{extra}]'"
        ) from None


def make_trackers(names: Sequence[str], run: TrackedRun) -> list[Tracker]:
    """The trackers asked for (each once); a missing extra is one line naming it."""
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise UserError(f"unknown tracker '{unknown[0]}'; use one of {', '.join(TRACKERS)}")
    made: list[Tracker] = []
    for name in dict.fromkeys(names):
        module = importlib.import_module(f"sbirbench.tracking.{TRACKERS[name][0]}")
        made.append(module.make(run))
    return made
