"""Suites: every job runs once, finished jobs are skipped, a crashed suite resumes, and the
comparison table is right."""

from __future__ import annotations

import csv
import io
import shutil
import statistics
from pathlib import Path

import pytest

from sbirbench import bench
from sbirbench.pipeline import execute as execute_module
from sbirbench.protocol.benchmarks import load_benchmarks

from .cli_helpers import invoke

REPO = Path(__file__).resolve().parents[1]
SUITE = """
[suites.tiny]
description = "two methods, two seeds"
methods = ["pretrained", "ce"]
benchmarks = ["synthetic"]
seeds = [0, 1]
set = ["epochs=1", "batch_size=8", "dataset.sketches_per_class=8", "dataset.photos_per_class=8"]

[suites.tiny-variants]
description = "variants"
methods = ["ce"]
benchmarks = ["synthetic"]
seeds = [0]
set = ["epochs=1", "batch_size=8", "dataset.sketches_per_class=8", "dataset.photos_per_class=8"]
[suites.tiny-variants.variants]
plain = []
no-smoothing = ["smoothing=0.0"]
"""


@pytest.fixture
def suites(tmp_path, monkeypatch):
    path = tmp_path / "benchmarks.toml"
    path.write_text((REPO / "benchmarks.toml").read_text() + SUITE)
    monkeypatch.setenv("SBIRBENCH_BENCHMARKS", str(path))
    return path


def test_suite_runs_skips_and_resumes(tmp_path, capsys, monkeypatch, suites):
    out = tmp_path / "runs"
    first = invoke(capsys, "bench", "tiny", "--out", str(out))
    assert first.code == 0, first.err
    assert first.out.count("(finished)") == 4
    table = (out / "suites" / "tiny" / "comparison.md").read_text()
    assert "| ce [timm_tiny, preset cpu-smoke]" in table and "| 2 " in table

    def no_training(*args, **kwargs):
        raise AssertionError("a finished job was run again")

    with monkeypatch.context() as patched:
        patched.setattr(execute_module, "execute", no_training)
        again = invoke(capsys, "bench", "tiny", "--out", str(out))
    assert again.code == 0 and again.out.count("(done before)") == 4

    # a crash after the first job: the rerun finishes only what is missing
    for run in sorted((out / "synthetic" / "ce").iterdir())[1:]:
        shutil.rmtree(run)
    calls = []
    real = execute_module.execute

    def counting(*args, **kwargs):
        calls.append(args[0].method_name)
        return real(*args, **kwargs)

    monkeypatch.setattr(execute_module, "execute", counting)
    resumed = invoke(capsys, "bench", "tiny", "--out", str(out))
    assert resumed.code == 0 and calls == ["ce"]
    assert resumed.out.count("(done before)") == 3


def test_variants_are_separate_rows(tmp_path, capsys, suites):
    outcome = invoke(capsys, "bench", "tiny-variants", "--out", str(tmp_path))
    assert outcome.code == 0, outcome.err
    rows = list(
        csv.DictReader(
            io.StringIO((tmp_path / "suites" / "tiny-variants" / "comparison.csv").read_text())
        )
    )
    labels = {r["method"] for r in rows if r["chance"] == "False"}
    assert len(labels) == 2 and any("smoothing=0.0" in label for label in labels)
    assert any(r["chance"] == "True" for r in rows)  # and the chance row


def test_comparison_mean_interval_and_std_on_known_inputs(tmp_path):
    def result(run_id, seed, value):
        return {
            "run_id": run_id,
            "method": "pskd",
            "benchmark": "tuberlin-30",
            "benchmark_version": 1,
            "backbone": "vit_tokens",
            "preset": "published",
            "overrides": [],
            "seed": seed,
            "config": {"seed": seed},
            "metrics": {"map@all": value, "prec@100": value + 0.1},
        }

    suite = load_benchmarks().suite("paper")
    values = [0.50, 0.53, 0.47]
    md, csv_path, rich = bench.write_comparison(
        suite, [result(str(i), i, v) for i, v in enumerate(values)], load_benchmarks(), tmp_path
    )
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    measured = next(r for r in rows if r["method"].startswith("pskd") and r["metric"] == "map@all")
    assert float(measured["mean"]) == pytest.approx(statistics.fmean(values))
    assert float(measured["std"]) == pytest.approx(statistics.stdev(values))
    half = 4.303 * statistics.stdev(values) / 3**0.5  # t(0.975, 2 dof)
    assert float(measured["ci95_high"]) == pytest.approx(0.50 + half, abs=1e-4)
    text = md.read_text()
    assert f"**0.500 ± {half:.3f}**" in text and "PSKD (MM 22) †" in text
    assert f"0.500 ± {half:.3f}" in rich and "95% t-interval" in text


def test_unknown_suite_lists_the_known_ones(capsys):
    outcome = invoke(capsys, "bench", "nope")
    assert outcome.code == 2 and "unknown suite 'nope'" in outcome.err and "smoke" in outcome.err
