"""GPU paths (skipped without CUDA): metrics on the device equal the CPU's, and a short
bf16 run trains and evaluates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sbirbench.metrics import retrieval_metrics

from .cli_helpers import SMALL, invoke, only_run

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_on_the_gpu_equal_the_cpu(ties):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(300, 32)).astype(np.float32)
    g = rng.normal(size=(2000, 32)).astype(np.float32)
    if ties:
        q, g = np.rint(q).clip(-1, 1), np.rint(g).clip(-1, 1)
    ql, gl = rng.integers(0, 10, 300), rng.integers(0, 10, 2000)
    metrics = ("map@all", "map@200", "prec@100", "prec@200")
    cpu = retrieval_metrics(q, ql, g, gl, metrics=metrics, similarity="dot")
    gpu = retrieval_metrics(
        torch.from_numpy(q).cuda(),
        ql,
        torch.from_numpy(g).cuda(),
        gl,
        metrics=metrics,
        similarity="dot",
    )
    for m in metrics:
        assert gpu[m] == pytest.approx(cpu[m], abs=1e-6), m


def test_short_bf16_run_on_the_gpu(tmp_path, capsys):
    outcome = invoke(
        capsys,
        "run",
        "pskd",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--device",
        "cuda",
        "--precision",
        "bf16",
        "--set",
        "teacher_epochs=1",
        "--epochs",
        "1",
        *SMALL,
    )
    assert outcome.code == 0, outcome.err
    result = json.loads((only_run(tmp_path, method="pskd") / "result.json").read_text())
    assert result["precision"] == "bf16" and "cpu" not in result["devices"][0]
