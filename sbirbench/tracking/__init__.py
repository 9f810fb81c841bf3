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
from collections.abc import Callable, Sequence
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


class TrackerSet:
    """A run's trackers. Starting is all or nothing: an error there stops the run before
    it trains (one line), and the trackers already started are closed. Afterwards a
    tracker that fails (a server gone, a network down) is a warning: it logs nothing
    more and training goes on."""

    def __init__(self, trackers: dict[str, Tracker], warn: Callable[[str], None]) -> None:
        self.trackers, self.warn = dict(trackers), warn
        self.started: dict[str, Tracker] = {}

    def start(self, config: dict[str, Any]) -> None:
        for name, tracker in self.trackers.items():
            tracker.start(config)
            self.started[name] = tracker

    def epoch(self, step: int, record: dict[str, Any]) -> None:
        self._each(lambda tracker: tracker.epoch(step, record))

    def finish(self, metrics: dict[str, float]) -> None:
        self._each(lambda tracker: tracker.finish(metrics))

    def close(self) -> None:
        self._each(lambda tracker: tracker.close())
        self.started.clear()

    def _each(self, call: Callable[[Tracker], None]) -> None:
        for name, tracker in list(self.started.items()):
            try:
                call(tracker)
            except Exception as exc:  # a tracker's failure must not end the training
                self.warn(f"--tracker {name} failed ({type(exc).__name__}: {exc}); "
                          "it logs nothing more")  # fmt: skip
                del self.started[name]


def make_trackers(
    names: Sequence[str], run: TrackedRun, warn: Callable[[str], None] = print
) -> TrackerSet:
    """The trackers asked for (each once); a missing extra is one line naming it."""
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise UserError(f"unknown tracker '{unknown[0]}'; use one of {', '.join(TRACKERS)}")
    made: dict[str, Tracker] = {}
    for name in dict.fromkeys(names):
        module = importlib.import_module(f"sbirbench.tracking.{TRACKERS[name][0]}")
        made[name] = module.make(run)
    return TrackerSet(made, warn)
