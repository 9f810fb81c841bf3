"""perf/gpu_check.sh: its CPU dry run (what CI can check of the prepared GPU script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_dry_run_writes_its_figures(tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO / "perf" / "gpu_check.sh"), str(tmp_path), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert set(figures["steps"]) == {"gpu_tests", "backbone_speed", "metrics_speed", "pskd_run"}
    assert all(step["exit_code"] == 0 for step in figures["steps"].values())
    assert figures["backbone_speed"]["rows"][0]["images_per_second"] > 0
    assert figures["metrics_speed"]["gallery"] == 5000
    assert 0 <= figures["pskd_run"]["metrics"]["map@all"] <= 1
    text = (tmp_path / "figures.md").read_text()
    assert "## Backbone throughput" in text and "## PSKD on the embedded data set" in text
