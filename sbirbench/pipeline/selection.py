"""Model selection: the last epoch (the default), or the best epoch on the test set.

The TVT/PSKD release evaluates every epoch's checkpoint on the test classes and its
tables report the best one. That tunes on the test set, so sbirbench does it only when
asked (``--select best-epoch``) and labels the result: ``model_selection`` in
result.json, and the option is part of the run's configuration (and so of its
leaderboard label).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from sbirbench.interfaces import Method
from sbirbench.runtime import checkpoint

from .store import RunStore

RULES = ("last", "best-epoch")
DESCRIPTIONS = {
    "last": "the model after the last epoch",
    "best-epoch": "the epoch with the best test-set value of the headline metric, as the "
    "TVT/PSKD release reports (this selects on the test classes)",
}


class BestEpoch:
    """Evaluate after every epoch of the last stage; keep the best model's weights in
    ``checkpoints/best.pt`` (with ``best.json``), so a resumed run keeps its best."""

    def __init__(
        self,
        method: Method,
        store: RunStore,
        metric: str,
        evaluate: Callable[[], dict[str, float]],
    ) -> None:
        self.method, self.metric, self.evaluate = method, metric, evaluate
        self.store = store
        self.weights = store.root / "checkpoints" / "best.pt"
        self.record = store.root / "checkpoints" / "best.json"
        self.best: dict[str, Any] | None = (
            json.loads(self.record.read_text()) if self.record.is_file() else None
        )

    def after_epoch(self, epoch: int) -> dict[str, Any]:
        value = float(self.evaluate()[self.metric])
        if self.best is None or value > self.best["value"]:
            self.best = {"epoch": epoch + 1, "metric": self.metric, "value": value}
            self.store.save(self.weights, {"state": self.method.model().state_dict()})
            self.store.write_json(self.record, self.best)
        return {"metric": self.metric, "value": value}

    def restore(self) -> dict[str, Any]:
        """Load the best epoch's weights into the method (every rank); what was chosen."""
        if self.best is None:
            return {"rule": "best-epoch", "description": DESCRIPTIONS["best-epoch"], "epoch": None}
        state = checkpoint.load(self.weights)["state"]
        model = self.method.model()
        device = next(iter(model.parameters()), torch.empty(0)).device
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
        return {"rule": "best-epoch", "description": DESCRIPTIONS["best-epoch"], **self.best}
