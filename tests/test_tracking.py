"""Experiment tracking: what a run logs is read back from the trackers' own stores
(jsonl lines; TensorBoard event files through tensorboard's reader; MLflow's local
SQLite store through MlflowClient; W&B's offline run file through its protobuf records)."""

from __future__ import annotations

import json
import sys

import pytest

from .cli_helpers import SMALL, invoke, only_run

ARGS = ["run", "ce", "--dataset", "synthetic", "--epochs", "2", *SMALL]


def test_jsonl_logs_the_config_every_epoch_and_the_metrics(tmp_path, capsys):
    outcome = invoke(capsys, *ARGS, "--tracker", "jsonl", "--out", str(tmp_path))
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    events = [json.loads(line) for line in (run / "tracking.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["config", "epoch", "epoch", "metrics"]
    config = events[0]["config"]
    assert config["run_id"] == run.name and config["method_config"]["epochs"] == 2
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    for event, record in zip(events[1:3], history, strict=True):
        assert event["values"]["train/loss/loss"] == pytest.approx(record["losses"]["loss"])
        assert event["values"]["train/lr"] == pytest.approx(record["lr"])
        assert event["values"]["train/images_per_second"] > 0
    result = json.loads((run / "result.json").read_text())
    assert events[-1]["metrics"] == result["metrics"]


def test_tensorboard_event_files_hold_the_losses_and_metrics(tmp_path, capsys):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="needs the [track] extra: pip install -e '.[track]'",
    )
    outcome = invoke(capsys, *ARGS, "--tracker", "tensorboard", "--out", str(tmp_path))
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    events = accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss/loss", "train/lr", "train/images_per_second", "eval/map@all"} <= tags
    losses = events.Scalars("train/loss/loss")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [s.step for s in losses] == [1, 2]
    assert [s.value for s in losses] == pytest.approx([h["losses"]["loss"] for h in history])
    result = json.loads((run / "result.json").read_text())
    assert events.Scalars("eval/map@all")[0].value == pytest.approx(result["metrics"]["map@all"])
    assert "config" in " ".join(events.Tags()["tensors"])


def history_of(run):
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_mlflow_store_holds_the_config_losses_and_metrics(tmp_path, capsys, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="needs the [mlflow] extra")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    outcome = invoke(capsys, *ARGS, "--tracker", "mlflow", "--out", str(tmp_path))
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synthetic")
    [found] = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == run.name and found.info.status == "FINISHED"
    assert json.loads((run / "mlflow-run.json").read_text())["run_id"] == found.info.run_id
    params = found.data.params
    assert params["method_config.epochs"] == "2" and params["run_id"] == run.name
    losses = client.get_metric_history(found.info.run_id, "train/loss/loss")
    assert [m.step for m in losses] == [1, 2]
    expected = [h["losses"]["loss"] for h in history_of(run)]
    assert [m.value for m in losses] == pytest.approx(expected)
    result = json.loads((run / "result.json").read_text())
    assert found.data.metrics["eval/map_at_all"] == pytest.approx(result["metrics"]["map@all"])


def test_a_resumed_run_reopens_its_mlflow_run(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="needs the [mlflow] extra")
    from sbirbench.tracking import TrackedRun
    from sbirbench.tracking.mlflow_store import MlflowTracker, metric_key

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folder = tmp_path / "bench" / "ce" / "run-1"
    folder.mkdir(parents=True)
    tracked = TrackedRun(folder, tmp_path, "run-1", "bench")
    first = MlflowTracker(tracked)
    first.start({"device": "cpu", "method_config": {"epochs": 2}})
    first.epoch(1, {"stage": "train", "losses": {"ce": 2.0}, "lr": 0.1,
                    "images_per_second": 5.0, "seconds": 1.0})  # fmt: skip
    first.close()  # interrupted: marked failed
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(first.run_id).info.status == "FAILED"
    again = MlflowTracker(tracked)
    again.start({"device": "cuda", "method_config": {"epochs": 2}})  # resumed elsewhere
    assert again.run_id == first.run_id
    assert client.get_run(first.run_id).data.params["device"] == "cpu"  # as first logged
    again.epoch(2, {"stage": "train", "losses": {"ce": 1.0}, "lr": 0.1,
                    "images_per_second": 5.0, "seconds": 1.0})  # fmt: skip
    again.finish({"map@all": 0.5})
    history = client.get_metric_history(first.run_id, "train/loss/ce")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.0)]
    assert client.get_run(first.run_id).info.status == "FINISHED"
    assert metric_key("eval/prec@100") == "eval/prec_at_100"
    # the saved MLflow run is gone from the store: the resumed run starts a new one
    saved = json.loads((folder / "mlflow-run.json").read_text())
    (folder / "mlflow-run.json").write_text(json.dumps({**saved, "run_id": "0" * 32}))
    fresh = MlflowTracker(tracked)
    fresh.start({"device": "cpu"})
    assert fresh.run_id and fresh.run_id != first.run_id
    fresh.close()


def test_a_tracker_that_fails_while_logging_is_a_warning_and_training_goes_on():
    from sbirbench.tracking import TrackerSet

    class Broken:
        def __init__(self):
            self.calls = []

        def start(self, config):
            self.calls.append("start")

        def epoch(self, step, record):
            raise ConnectionError("server gone")

        def finish(self, metrics):
            self.calls.append("finish")

        def close(self):
            self.calls.append("close")

    class Fine(Broken):
        def epoch(self, step, record):
            self.calls.append("epoch")

    warnings: list[str] = []
    broken, fine = Broken(), Fine()
    trackers = TrackerSet({"mlflow": broken, "jsonl": fine}, warnings.append)
    trackers.start({})
    trackers.epoch(1, {})
    trackers.epoch(2, {})
    trackers.finish({})
    trackers.close()
    assert warnings == [
        "--tracker mlflow failed (ConnectionError: server gone); it logs nothing more"
    ]
    assert broken.calls == ["start"] and fine.calls == [
        "start",
        "epoch",
        "epoch",
        "finish",
        "close",
    ]


def test_wandb_offline_run_holds_the_config_losses_and_metrics(tmp_path, capsys, monkeypatch):
    pytest.importorskip("wandb", reason="needs the [wandb] extra")
    from .wandb_log import read_run

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline unless the user says so
    outcome = invoke(capsys, *ARGS, "--tracker", "wandb", "--out", str(tmp_path))
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    [log] = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    logged = read_run(log)
    # Seen once under a loaded full suite: no "run" record in the file (not reproduced).
    assert "id" in logged, f"no run record in {log}: {logged['kinds']} ({log.stat().st_size} B)"
    assert logged["id"].startswith(run.name)
    assert logged["config"]["run_id"] == run.name
    assert logged["config"]["method_config"]["epochs"] == 2
    rows = [row for row in logged["history"] if "train/loss/loss" in row]
    assert [row["_step"] for row in rows] == [1, 2]
    expected = [h["losses"]["loss"] for h in history_of(run)]
    assert [row["train/loss/loss"] for row in rows] == pytest.approx(expected)
    result = json.loads((run / "result.json").read_text())
    assert logged["summary"]["eval/map@all"] == pytest.approx(result["metrics"]["map@all"])


def test_a_missing_tracker_extra_is_one_line_naming_pip(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    outcome = invoke(capsys, *ARGS, "--tracker", "mlflow", "--out", str(tmp_path))
    assert outcome.code == 2
    assert outcome.err.strip().splitlines()[-1] == (
        "error: --tracker mlflow needs mlflow: pip install 'sbirbench[mlflow]'"
    )


def test_an_unknown_tracker_is_one_line(tmp_path, capsys):
    outcome = invoke(capsys, *ARGS, "--tracker", "neptune", "--out", str(tmp_path))
    assert outcome.code == 2 and "'neptune' is not one of 'jsonl', 'tensorboard'" in outcome.err


def test_the_wandb_run_id_is_fixed_by_the_run_folder(tmp_path):
    from sbirbench.tracking import TrackedRun
    from sbirbench.tracking.wandb_offline import run_key

    def key(folder):
        return run_key(TrackedRun(tmp_path / folder, tmp_path, "run-1", "bench"))

    assert key("a") == key("a") != key("b")  # a resume continues; another folder does not
    assert key("a").startswith("run-1-")


def test_a_two_process_run_tracks_from_rank_0_only(tmp_path):
    from .cli_helpers import spawn

    outcome = spawn(*ARGS[:4], "--epochs", "1", *ARGS[6:], "--nproc", "2",
                    "--tracker", "jsonl", "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    events = [json.loads(line) for line in (run / "tracking.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["config", "epoch", "metrics"]  # once, not twice
    assert events[0]["config"]["world_size"] == 2
