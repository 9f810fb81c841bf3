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
        self.mlflow = optional_import("mlflow", "mlflow", "mlflow")
        from mlflow.entities import Metric, Param

        self.metric, self.param = Metric, Param
        self.run = run
        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or (
            f"sqlite:///{run.out.resolve() / 'mlflow.db'}"
        )
        self.id_file = run.folder / "mlflow-run.json"
        self.run_id = ""
        self.last = 0
        self.finished = False

    def start(self, config: dict[str, Any]) -> None:
        """Reopen the run's MLflow run (a resume), or create it and log the configuration
        as parameters (once: MLflow refuses to change a parameter, and a resumed run may
        differ in settings outside its identity, such as the device)."""
        try:
            self.client = self.mlflow.MlflowClient(tracking_uri=self.uri)
            reopened = self._reopen()
            self.run_id = reopened or self._create()
            if not reopened:
                self._log_params(config)
        except self.mlflow.exceptions.MlflowException as exc:
            raise UserError(f"mlflow ({self.uri}): {str(exc).splitlines()[0]}") from None

    def _reopen(self) -> str | None:
        """The saved MLflow run, running again; None when there is none in this store."""
        try:
            saved = json.loads(self.id_file.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("tracking_uri") != self.uri:
            return None
        try:
            self.client.update_run(saved["run_id"], status="RUNNING")
        except self.mlflow.exceptions.MlflowException:  # the store was emptied since
            return None
        return str(saved["run_id"])

    def _create(self) -> str:
        run = self.run
        found = self.client.get_experiment_by_name(run.experiment)
        experiment = found.experiment_id if found else self.client.create_experiment(run.experiment)
        tags = {"sbirbench.run_dir": str(run.folder.resolve()), "sbirbench.run_id": run.run_id}
        created = self.client.create_run(experiment, run_name=run.run_id, tags=tags)
        run_id = created.info.run_id
        self.id_file.write_text(json.dumps({"tracking_uri": self.uri, "run_id": run_id}))
        return str(run_id)

    def _log_params(self, config: dict[str, Any]) -> None:
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
        if self.run_id and not self.finished:  # an error or Ctrl-C; --resume reopens it
            self.client.set_terminated(self.run_id, "FAILED")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def make(run: TrackedRun) -> MlflowTracker:
    return MlflowTracker(run)
