"""Regression tests of defects that a sweep of fault and bad-input cases found in runs
(issue 18): each failed before its fix. The kill -9 and full-disk cases are in
test_faults.py, the leaderboard's in test_leaderboard.py, the plugins' in test_plugins.py."""

from __future__ import annotations

import errno
import json
from pathlib import Path

from sbirbench.console import Output
from sbirbench.runtime import checkpoint

from .cli_helpers import SMALL, invoke, only_run
from .dataset_trees import folder_tree

ONE_EPOCH = ["run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL]


def messages(outcome, kind: str = "info") -> list[str]:
    return [e["message"] for e in outcome.json_lines() if e.get("event") == kind]


def test_running_a_finished_configuration_again_says_so(tmp_path, capsys):
    args = [*ONE_EPOCH, "--out", str(tmp_path), "--log-format", "jsonl"]
    assert invoke(capsys, *args).code == 0
    first = only_run(tmp_path)
    again = invoke(capsys, *args)
    assert again.code == 0
    said = " ".join(messages(again))
    assert f"this configuration already finished in {first}" in said
    assert "--resume returns the finished result" in said
    assert len(list((tmp_path / "synthetic" / "ce").iterdir())) == 2  # a repeat, as asked


def test_a_distillation_method_with_0_epochs_trains_no_teacher(tmp_path, capsys):
    outcome = invoke(
        capsys,
        "run",
        "pskd",
        "--dataset",
        "synthetic",
        "--epochs",
        "0",
        *SMALL,
        "--out",
        str(tmp_path),
        "--log-format",
        "jsonl",
    )
    assert outcome.code == 0, outcome.err
    assert messages(outcome, "warning")[0] == "stage student has 0 epochs: it trains nothing"
    run = only_run(tmp_path, method="pskd")
    assert (run / "history.jsonl").read_text() == ""
    assert not (run / "stages" / "teacher.pt").exists()
    result = json.loads((run / "result.json").read_text())
    assert result["wall_time"]["stages"] == {"student": 0.0}


def test_a_resumed_run_warns_only_of_the_stages_still_to_train(tmp_path, capsys, monkeypatch):
    """kd with a 0-epoch teacher warns once; stopped in the student stage and resumed, it
    does not warn again about the teacher stage it has left behind."""
    from sbirbench.pipeline.trainer import trainer as trainer_module

    class StopAtOnce:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        raised = True  # as if Ctrl-C came during the first step

    args = [
        "run",
        "kd",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
        *SMALL,
        "--set",
        "teacher_epochs=0",
        "--out",
        str(tmp_path),
        "--log-format",
        "jsonl",
    ]
    monkeypatch.setattr(trainer_module, "StopFlag", StopAtOnce)
    stopped = invoke(capsys, *args)
    assert stopped.code == 130
    assert messages(stopped, "warning") == ["stage teacher has 0 epochs: it trains nothing"]
    monkeypatch.undo()
    resumed = invoke(capsys, *args, "--resume")
    assert resumed.code == 0, resumed.err
    assert not any("0 epochs" in m for m in messages(resumed, "warning"))


def test_every_class_unseen_is_named_as_the_cause(tmp_path, capsys):
    folder_tree(tmp_path / "data", "sketch", ["photo"], ["a", "b", "c"], per_class=2)
    data = ["--dataset", "folder", "--data-root", str(tmp_path / "data")]
    all_unseen = ["--set", "dataset.unseen=a,b,c", "--backbone", "timm_tiny"]
    outcome = invoke(capsys, "run", "ce", *data, *all_unseen, "--out", str(tmp_path / "runs"))
    assert outcome.code != 0
    assert outcome.err.strip().splitlines() == [
        "error: folder split default leaves no seen class to train ce on (every class is unseen)"
    ]
    assert not (tmp_path / "runs").exists()
    frozen = invoke(
        capsys, "run", "pretrained", *data, *all_unseen, "--out", str(tmp_path / "runs")
    )
    assert frozen.code == 0, frozen.err  # a frozen backbone needs no seen class


def test_eval_names_the_unreadable_test_images(tmp_path, capsys):
    folder_tree(tmp_path / "data", "sketch", ["photo"], ["a", "b", "c", "d"], per_class=2)
    ran = invoke(
        capsys,
        "run",
        "pretrained",
        "--dataset",
        "folder",
        "--data-root",
        str(tmp_path / "data"),
        "--set",
        "dataset.unseen=c,d",
        "--backbone",
        "timm_tiny",
        "--out",
        str(tmp_path / "runs"),
        "--log-format",
        "quiet",
    )
    assert ran.code == 0, ran.err
    broken = tmp_path / "data" / "photo" / "d" / "p0-photo.jpg"
    broken.write_bytes(b"not a jpeg")
    run = only_run(tmp_path / "runs", benchmark="folder-default", method="pretrained")
    evaluated = invoke(capsys, "eval", str(run), "--no-cache", "--log-format", "quiet")
    assert evaluated.code == 0, evaluated.err
    assert "warning: 1 unreadable test images left out of the evaluation" in evaluated.err
    assert str(broken) in evaluated.err
    saved = json.loads((run / "eval-folder-default.json").read_text())
    assert saved["unreadable_images"] == 1


def test_a_best_epoch_file_that_cannot_be_written_is_one_line_naming_resume(
    tmp_path, capsys, monkeypatch
):
    """--select best-epoch writes checkpoints/best.pt through the run store, so a folder
    that stops taking writes is the store's one line, not a raw PermissionError."""
    real = checkpoint.save

    def best_is_read_only(path, payload):
        if Path(path).name == "best.pt":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, payload)

    monkeypatch.setattr(checkpoint, "save", best_is_read_only)
    outcome = invoke(capsys, *ONE_EPOCH, "--select", "best-epoch", "--out", str(tmp_path))
    assert outcome.code != 0
    line = outcome.err.strip().splitlines()[-1]
    assert "Traceback" not in outcome.err
    assert line.startswith("error: cannot write ") and "best.pt: Permission denied" in line
    assert line.endswith("fix it and continue with --resume")


def test_a_log_file_that_cannot_be_written_does_not_end_the_run(tmp_path, capsys):
    output = Output("quiet")
    log = tmp_path / "log.txt"
    output.attach_log(log)
    output.info("first")
    log.unlink()
    log.mkdir()  # the log's path now takes no appends, even for root
    output.info("second")
    output.warn("third")
    err = capsys.readouterr().err
    assert err.count(f"cannot write {log}") == 1 and "warning: third" in err
    assert output.log_path is None


def test_a_resumed_history_has_no_epoch_twice(tmp_path, capsys, monkeypatch):
    """A kill between the checkpoint and the history line: the next start rewrites
    history.jsonl from the checkpoint."""
    args = ["run", "ce", "--dataset", "synthetic", "--epochs", "2", *SMALL, "--out", str(tmp_path)]
    assert invoke(capsys, *args).code == 0
    run = only_run(tmp_path)
    (run / "result.json").unlink()
    history = run / "history.jsonl"
    history.write_text(history.read_text() + history.read_text().splitlines()[-1] + "\n")
    (run / "checkpoints" / f".last.pt.{Path(run).name}.tmp").write_bytes(b"half")
    assert invoke(capsys, *args, "--resume").code == 0
    assert [json.loads(x)["epoch"] for x in history.read_text().splitlines()] == [1, 2]
    assert not list(run.rglob("*.tmp"))
