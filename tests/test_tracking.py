"""Experiment tracking: what a run logs is read back from the trackers' own files
(jsonl lines; TensorBoard event files through tensorboard's reader)."""

from __future__ import annotations

import json

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


def test_an_unknown_tracker_is_one_line(tmp_path, capsys):
    outcome = invoke(capsys, *ARGS, "--tracker", "wandb", "--out", str(tmp_path))
    assert outcome.code == 2 and "'wandb' is not one of 'jsonl', 'tensorboard'" in outcome.err
