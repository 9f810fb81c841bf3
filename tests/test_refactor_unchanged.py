"""Refactors (the pipeline of issue 15, the package layout of issue 27) must not change
what a run computes: seed-0 runs of ce, kd and pskd on the embedded data set give the
metrics and the configuration hashes recorded in tests/data/ (``python -m
tests.record_unchanged``, last with commit 74f85c7, when the ``batchnorm`` setting
changed every configuration hash; its ``auto`` trains these from-scratch runs as before,
and the short runs' metrics stayed within 1e-3 of the recording of daa15ac).
The fixtures were recorded with torch's two intra-op threads (the development machine's
cores); the thread count changes the last bits of float32 sums (one thread moved kd's
mAP@all by 4e-6), so the runs here use two threads too, whatever the machine.

The configuration hashes must match exactly. The metrics match to 1e-6 only on the
machine that recorded them: on another CPU (other SIMD kernels) or torch build the same
code gave ce 0.29925 against the recorded 0.30025 (kd 3e-4, pskd 2e-4 apart; measured at
the commit that passed here before), so they are compared to ``TOLERANCE``, far below
what a changed computation moves (seed 1 instead of 0 moves ce's mAP@all by 0.013)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from .cli_helpers import invoke

#: Cross-machine float noise after one or a few epochs (measured up to 1e-3, see above).
TOLERANCE = 5e-3
RECORDED = json.loads((Path(__file__).parent / "data" / "seed0_before_refactor.json").read_text())
SMALL = [
    "--set",
    "dataset.sketches_per_class=8",
    "--set",
    "dataset.photos_per_class=8",
    "--batch-size",
    "8",
    "--epochs",
    "1",
]
FAST_ARGS = {
    "ce": SMALL,
    "kd": [*SMALL, "--set", "teacher_epochs=1", "--set", "teacher_batch_size=8"],
    "pskd": [*SMALL, "--set", "teacher_epochs=1", "--set", "teacher_batch_size=8"],
}


@pytest.fixture(autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def run_and_compare(capsys, tmp_path: Path, method: str, args: list[str], recorded: dict) -> None:
    outcome = invoke(
        capsys,
        "run",
        method,
        "--dataset",
        "synthetic",
        "--seed",
        "0",
        *args,
        "--out",
        str(tmp_path),
        "--log-format",
        "quiet",
    )
    assert outcome.code == 0, outcome.err
    result = json.loads(next(tmp_path.rglob("result.json")).read_text())
    assert result["config_hash"] == recorded["config_hash"]
    for metric, value in recorded["metrics"].items():
        assert result["metrics"][metric] == pytest.approx(value, abs=TOLERANCE), metric


@pytest.mark.parametrize("method", ["ce", "kd", "pskd"])
def test_short_seed0_runs_are_unchanged(method, tmp_path, capsys):
    run_and_compare(capsys, tmp_path, method, FAST_ARGS[method], RECORDED["fast"][method])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ce", "kd", "pskd"])
def test_cpu_smoke_seed0_runs_are_unchanged(method, tmp_path, capsys):
    run_and_compare(capsys, tmp_path, method, [], RECORDED["full"][method])
