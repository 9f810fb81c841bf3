"""The training engine end to end: results, DDP, interrupt and resume, NaN, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

import sbirbench
from sbirbench.interfaces import Stage, StageSettings, TrainConfig
from sbirbench.pipeline.trainer import trainer as trainer_module
from sbirbench.testing import registered_plugin

from .cli_helpers import SMALL, invoke, only_run, spawn


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_end_to_end_run_writes_a_complete_result(tmp_path, capsys):
    outcome = invoke(
        capsys,
        "run",
        "ce",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--epochs",
        "2",
        *SMALL,
    )
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    result = json.loads((run / "result.json").read_text())
    assert result["schema"] == 2 and result["kind"] == "run" and result["run_id"] == run.name
    assert (result["method"], result["dataset"], result["split"], result["benchmark"]) == (
        "ce",
        "synthetic",
        "default",
        "synthetic",
    )
    assert result["benchmark_version"] == 1 and result["backbone"] == "timm_tiny"
    assert result["preset"] == "cpu-smoke" and result["seed"] == 0
    assert set(result["metrics"]) == {"map@all", "prec@100", "map@200", "prec@200"}
    assert all(0 <= v <= 1 for v in result["metrics"].values())
    assert sorted(result["per_class_ap"]) == sorted(
        ["circle_antennae", "square_legs", "triangle_handle", "star_wheels", "hexagon_antennae"]
    )
    assert result["conventions"]["ap"] == "interpolated"
    assert result["queries"] == 40 and result["gallery"] == 40
    assert result["queries_without_positives"] == 0
    assert result["world_size"] == 1 and result["precision"] == "fp32"
    assert result["config"]["method_config"]["epochs"] == 2
    assert len(result["config_hash"]) == 64
    assert {"sbirbench", "torch", "timm", "python"} <= set(result["versions"])
    assert "git_commit" in result and result["devices"][0].startswith("cpu")
    assert set(result["wall_time"]) == {
        "stages",
        "training",
        "evaluation",
        "total",
        "earlier_processes",
    }
    assert result["images_per_second"]["train"] > 0
    for name in (
        "config.json",
        "log.txt",
        "checkpoint.pt",
        "checkpoints/last.pt",
        "stages/train.pt",
    ):
        assert (run / name).is_file(), name
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"loss", "ce_photo", "ce_sketch"} <= set(history[0]["losses"])
    assert "stage train" in (run / "log.txt").read_text()


def test_rerun_with_resume_of_a_finished_run_returns_its_result(tmp_path, capsys):
    args = ["run", "ce", "--dataset", "synthetic", "--out", str(tmp_path), "--epochs", "1", *SMALL]
    assert invoke(capsys, *args).code == 0
    first = json.loads((only_run(tmp_path) / "result.json").read_text())
    again = invoke(capsys, *args, "--resume", "--log-format", "jsonl")
    assert again.code == 0
    assert again.json_lines()[-1]["run_id"] == first["run_id"]
    assert len(list((tmp_path / "synthetic" / "ce").iterdir())) == 1


class StopAfter:
    """A stand-in for the Ctrl-C flag that "raises" after a number of steps."""

    steps = 0

    def __init__(self) -> None:
        self.seen = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def raised(self) -> bool:
        self.seen += 1
        return self.seen >= StopAfter.steps


# the end of epoch 1 (in the default run); mid-epoch 2 (slow)
@pytest.mark.parametrize("stop_after", [15, pytest.param(22, marks=pytest.mark.slow)])
def test_interrupt_and_resume_match_an_uninterrupted_run(tmp_path, capsys, monkeypatch, stop_after):
    args = ["run", "ce", "--dataset", "synthetic", "--epochs", "3", *SMALL]
    assert invoke(capsys, *args, "--out", str(tmp_path / "whole")).code == 0

    monkeypatch.setattr(trainer_module, "StopFlag", StopAfter)
    StopAfter.steps = stop_after
    stopped = invoke(capsys, *args, "--out", str(tmp_path / "split"))
    assert stopped.code == 130
    assert "interrupted in stage train" in stopped.err and "--resume" in stopped.err
    run = only_run(tmp_path / "split")
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "result.json").exists()
    monkeypatch.undo()
    assert invoke(capsys, *args, "--out", str(tmp_path / "split"), "--resume").code == 0

    whole, split = only_run(tmp_path / "whole"), only_run(tmp_path / "split")
    a = torch.load(whole / "checkpoint.pt", weights_only=True)["state"]
    b = torch.load(split / "checkpoint.pt", weights_only=True)["state"]
    assert states_equal(a, b)
    ra, rb = (json.loads((r / "result.json").read_text()) for r in (whole, split))
    assert ra["metrics"] == rb["metrics"]
    history = [json.loads(x) for x in (split / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["steps"] for h in history] == [15, 15, 15]  # the resumed epoch is whole


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    args = [
        "run",
        "ce",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--epochs",
        "4",
        *SMALL[:-2],
        "--log-format",
        "jsonl",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbirbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if '"event": "epoch"' in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "Traceback" not in err
    resumed = spawn(*args, "--resume")
    assert resumed.code == 0, resumed.err
    history = (only_run(tmp_path) / "history.jsonl").read_text().splitlines()
    assert [json.loads(h)["epoch"] for h in history] == [1, 2, 3, 4]


@dataclass(frozen=True)
class NanConfig(TrainConfig):
    backbone: str = "timm_tiny"
    epochs: int = 2
    nan_at: int = 20
    nan_in: str = "loss"


class NanMethod(sbirbench.interfaces.Method):
    """Trains a linear probe; its loss turns NaN at step ``nan_at``."""

    Config = NanConfig

    def __init__(self, config, setup):
        super().__init__(config, setup)
        self.backbone = setup.backbone.build()
        self.head = torch.nn.Linear(self.backbone.feature_dim, setup.num_classes)
        self.calls = 0

    def step(self, batch):
        self.calls += 1
        logits = self.head(self.backbone(batch.photos)["pooled"])
        ce = torch.nn.functional.cross_entropy(logits, batch.photo_labels)
        if self.calls < self.config.nan_at:
            extra = ce * 0
        elif self.config.nan_in == "loss":
            extra = torch.tensor(float("nan"))
        else:  # finite (zero) loss, infinite gradient: d sqrt(x) / dx at x = 0
            extra = (self.head.weight * 0).abs().sqrt().sum()
        return {"loss": ce + extra, "ce": ce, "extra": extra}

    def stages(self):
        settings = StageSettings.from_config(self.config, skt_factor=0, augment="none")
        return [Stage("probe", {"backbone": self.backbone, "head": self.head}, self.step, settings)]

    def model(self):
        return self.backbone

    def embed(self, images, modality):
        return self.backbone(images)["pooled"]


class NanPlugin:
    @sbirbench.hookimpl
    def register_methods(self, register):
        register("nan-probe", NanMethod)


def test_non_finite_loss_stops_with_the_step_and_loss_parts(tmp_path, capsys, fresh_plugins):
    with registered_plugin(NanPlugin(), "nan-plugin"):
        outcome = invoke(
            capsys, "run", "nan-probe", "--dataset", "synthetic", "--out", str(tmp_path), *SMALL
        )
    assert outcome.code == 1
    assert "Traceback" not in outcome.err
    *warnings, line = outcome.err.strip().splitlines()
    assert all(w.startswith("warning: ") for w in warnings)  # nan-probe has no presets file
    assert line.startswith("error: ")
    assert "non-finite loss in stage probe, epoch 2, step 5" in line
    assert "loss=nan" in line and "extra=nan" in line and "ce=" in line
    run = only_run(tmp_path, method="nan-probe")
    assert str(run / "checkpoints" / "last.pt") in line
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["position"] == {"stage": 0, "epoch": 1, "step": 0}  # the last good one
    assert not (run / "result.json").exists()


@pytest.mark.slow
def test_two_process_gloo_run_equals_single_process_evaluation(tmp_path):
    # One thread and one image per forward pass in both, so features are bitwise equal and
    # any difference would come from sharding or gathering.
    same_numerics = {"OMP_NUM_THREADS": "1"}
    outcome = spawn(
        "run",
        "ce",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--epochs",
        "1",
        "--nproc",
        "2",
        "--eval-batch-size",
        "1",
        *SMALL,
        env=same_numerics,
    )
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    result = json.loads((run / "result.json").read_text())
    assert result["world_size"] == 2
    evaluated = spawn(
        "eval",
        str(run),
        "--log-format",
        "quiet",
        "--no-cache",
        "--batch-size",
        "1",
        env=same_numerics,
    )
    assert evaluated.code == 0, evaluated.err
    single = json.loads((run / "eval-synthetic.json").read_text())
    assert single["world_size"] == 1
    for metric, value in result["metrics"].items():
        assert single["metrics"][metric] == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "cee", "--dataset", "synthetic"], "unknown method 'cee'; did you mean 'ce'?"),
        (["run", "ce", "--dataset", "synthetc"], "unknown dataset 'synthetc'; did you mean"),
        (
            ["run", "ce", "--dataset", "synthetic", "--set", "epoch=3"],
            "unknown key 'epoch' for method ce; valid keys:",
        ),
        (["run", "ce", "--dataset", "synthetic", "--set", "lr=fast"], "lr='fast' is not valid"),
        (
            ["run", "ce", "--dataset", "synthetic", "--set", "backbone.depth=2"],
            "unknown key 'depth' for backbone timm_tiny",
        ),
        (["run", "ce", "--dataset", "synthetic", "--preset", "huge"], "has no preset 'huge'"),
        (["run", "ce"], "name a data set (--dataset NAME) or a benchmark"),
        (["run", "ce", "--benchmark", "tuberlin-31"], "unknown benchmark 'tuberlin-31'"),
        (["run", "ce", "--dataset", "synthetic", "--split", "zeroshot"], "has the splits default"),
        (["run", "ce", "--dataset", "synthetic", "--batch-size", "4096"], "too large for"),
        (
            ["run", "ce", "--dataset", "sketchy", "--data-root", "/nonexistent"],
            "data root /nonexistent does not exist",
        ),
        (
            ["run", "ce", "--dataset", "synthetic", "--batch-size", "0"],
            "batch_size=0: must be at least 1",
        ),
        (["run", "ce", "--dataset", "synthetic", "--set", "lr=-1"], "lr=-1.0: must be positive"),
        (["run", "ce", "--dataset", "synthetic", "--set", "lr=nan"], "lr=nan: must be a finite"),
        (
            ["run", "ce", "--dataset", "synthetic", "--set", "dataset.image_size=0"],
            "image_size=0: must be at least 16 pixels",
        ),
        (
            ["run", "kd", "--dataset", "synthetic", "--set", "teacher_accum_steps=3"],
            "teacher stage settings: batch_size 32 is not a multiple of accum_steps 3",
        ),
        (
            ["run", "pskd", "--dataset", "synthetic", "--set", "embed=bogus"],
            "embed=bogus: expected",
        ),
        (
            ["run", "pskd", "--dataset", "synthetic", "--set", "teacher_checkpoint=/nope.pt"],
            "checkpoint not found: /nope.pt",
        ),
        (["run", "ce", "--dataset", "synthetic", "--epochs", "x"], "'x' is not a valid integer"),
        (["eval", "/nonexistent/checkpoint.pt"], "checkpoint not found"),
        (["leaderboard", "--runs", "/nonexistent"], "no results folder"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    outcome = invoke(capsys, *args, *(["--out", str(tmp_path)] if args[0] == "run" else []))
    assert outcome.code != 0
    lines = outcome.err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], outcome.err
    assert "Traceback" not in outcome.err
    assert not list(tmp_path.iterdir()), "a run that could not start left a folder behind"


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(sbirbench.errors.UserError):
        invoke(capsys, "--debug", "run", "cee", "--dataset", "synthetic")
    os.environ.pop("SBIRBENCH_DEBUG", None)


def test_a_subset_is_never_recorded_under_the_benchmark_name(tmp_path, capsys):
    from .dataset_trees import classes_for, folder_tree

    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(
        tmp_path / "data", "sketch/tx_000000000000", ["photo/tx_000000000000"], seen + unseen
    )
    outcome = invoke(
        capsys,
        "run",
        "pretrained",
        "--benchmark",
        "sketchy-21",
        "--data-root",
        str(tmp_path / "data"),
        "--backbone",
        "timm_tiny",
        "--out",
        str(tmp_path / "runs"),
        "--log-format",
        "jsonl",
    )
    assert outcome.code == 0, outcome.err
    assert (
        "is not sketchy-21's (12694 x 12553); results are recorded as 'sketchy-zeroshot'"
        in outcome.out
    )
    assert outcome.json_lines()[-1]["benchmark"] == "sketchy-zeroshot"
    assert (tmp_path / "runs" / "sketchy-zeroshot" / "pretrained").is_dir()
    assert not (tmp_path / "runs" / "sketchy-21").exists()


def test_non_finite_gradients_with_a_finite_loss_also_stop(tmp_path, capsys, fresh_plugins):
    with registered_plugin(NanPlugin(), "nan-plugin"):
        outcome = invoke(
            capsys,
            "run",
            "nan-probe",
            "--dataset",
            "synthetic",
            "--out",
            str(tmp_path),
            "--set",
            "nan_in=gradients",
            *SMALL,
        )
    assert outcome.code == 1
    assert (
        "non-finite gradients (with a finite loss) in stage probe, epoch 2, step 5" in outcome.err
    )


def test_eval_does_not_need_the_teacher_checkpoint_any_more(tmp_path, capsys):
    fast = ["--set", "teacher_epochs=1", "--epochs", "1", *SMALL]
    assert (
        invoke(
            capsys, "run", "pskd", "--dataset", "synthetic", "--out", str(tmp_path / "a"), *fast
        ).code
        == 0
    )
    teacher = only_run(tmp_path / "a", method="pskd") / "stages" / "teacher.pt"
    moved = tmp_path / "teacher.pt"
    teacher.rename(moved)
    assert (
        invoke(
            capsys,
            "run",
            "pskd",
            "--dataset",
            "synthetic",
            "--out",
            str(tmp_path / "b"),
            *fast,
            "--set",
            f"teacher_checkpoint={moved}",
        ).code
        == 0
    )
    moved.unlink()
    run = only_run(tmp_path / "b", method="pskd")
    evaluated = invoke(capsys, "eval", str(run), "--log-format", "quiet")
    assert evaluated.code == 0, evaluated.err
