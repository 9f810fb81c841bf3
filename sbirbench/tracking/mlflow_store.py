"""``--tracker mlflow``: one MLflow run per sbirbench run.

The store is ``$MLFLOW_TRACKING_URI`` when set (a server, a database), and otherwise the
SQLite file ``<out>/mlflow.db`` shared by every run under the same ``--out``, so that
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`` compares them. MLflow 3 keeps
its older ``./mlruns`` file store in maintenance mode and refuses it unless told
otherwise, so the local default is SQLite. The experiment is the benchmark's name; the
MLflow run is named after the run folder, holds the flattened configuration as
parameters, and is reopened when the run resumes (its id is kept in
``<run>/mlflow-run.json``). MLflow allows only ``/\\w.- :`` in metric names, so ``@``
becomes ``_at_`` (``eval/map_at_all``).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from sbirbench.errors import UserError
from sbirbench.tracking import TrackedRun, flatten, optional_import, scalars

PARAMS_PER_CALL = 100  # MLflow's log_batch limit
MAX_PARAM_VALUE = 6000


def metric_key(name: str) -> str:
    """A metric name in the characters MLflow allows."""
    return re.sub(r"[^/\w.\- ]", "_", name.replace("@", "_at_"))


class MlflowTracker:
    def __init__(self, run: TrackedRun) -> None:
        mlflow = optional_import("mlflow", "mlflow", "mlflow")
        from mlflow.entities import Metric, Param

        self.metric, self.param = Metric, Param
        uri = (
            os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{run.out.resolve() / 'mlflow.db'}"
        )
        self.id_file = run.folder / "mlflow-run.json"
        self.last = 0
        self.finished = False
        try:
            self.client = mlflow.MlflowClient(tracking_uri=uri)
            self.run_id = self._reopen(uri) or self._create(uri, run)
        except mlflow.exceptions.MlflowException as exc:
            raise UserError(f"mlflow ({uri}): {str(exc).splitlines()[0]}") from None

    def _reopen(self, uri: str) -> str | None:
        try:
            saved = json.loads(self.id_file.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("tracking_uri") != uri:
            return None
        self.client.update_run(saved["run_id"], status="RUNNING")
        return str(saved["run_id"])

    def _create(self, uri: str, run: TrackedRun) -> str:
        found = self.client.get_experiment_by_name(run.experiment)
        experiment = found.experiment_id if found else self.client.create_experiment(run.experiment)
        tags = {"sbirbench.run_dir": str(run.folder.resolve()), "sbirbench.run_id": run.run_id}
        created = self.client.create_run(experiment, run_name=run.run_id, tags=tags)
        run_id = created.info.run_id
        self.id_file.write_text(json.dumps({"tracking_uri": uri, "run_id": run_id}))
        return str(run_id)

    def start(self, config: dict[str, Any]) -> None:
        params = [
            self.param(key[:250], _text(value)[:MAX_PARAM_VALUE])
            for key, value in flatten(config).items()
        ]
        for first in range(0, len(params), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=params[first : first + PARAMS_PER_CALL])

    def _log(self, values: dict[str, float], step: int) -> None:
        stamp = int(time.time() * 1000)
        metrics = [self.metric(metric_key(k), v, stamp, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def epoch(self, step: int, record: dict[str, Any]) -> None:
        self._log(scalars(record), step)
        self.last = step

    def finish(self, metrics: dict[str, float]) -> None:
        self._log({f"eval/{k}": float(v) for k, v in metrics.items()}, self.last)
        self.client.set_terminated(self.run_id, "FINISHED")
        self.finished = True

    def close(self) -> None:
        if not self.finished:  # stopped by an error or Ctrl-C; --resume reopens it
            self.client.set_terminated(self.run_id, "FAILED")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def make(run: TrackedRun) -> MlflowTracker:
    return MlflowTracker(run)
