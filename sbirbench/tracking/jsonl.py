"""``--tracker jsonl``: events appended to ``<run>/tracking.jsonl``; needs nothing."""

from __future__ import annotations

import json
import time
from typing import Any

from sbirbench.tracking import TrackedRun, scalars


class JsonlTracker:
    """One JSON object per event (a resumed run appends to the same file)."""

    def __init__(self, run: TrackedRun) -> None:
        self.path = run.folder / "tracking.jsonl"

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


def make(run: TrackedRun) -> JsonlTracker:
    return JsonlTracker(run)
