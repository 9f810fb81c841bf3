"""The public Python API: sbirbench.run / evaluate / load_results, in a fresh interpreter,
with torch imported only once a run starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
import sbirbench
assert "torch" not in sys.modules and "timm" not in sys.modules, "imported too early"
out = sys.argv[1]
result = sbirbench.run(
    "ce", dataset="synthetic", epochs=1, seed=0, out=out, log="quiet",
    overrides=["dataset.sketches_per_class=8", "dataset.photos_per_class=8", "batch_size=8"],
)
assert "torch" in sys.modules
evaluation = sbirbench.evaluate(result.run_dir, ties="index", log="quiet")
every = sbirbench.load_results(out)
print(json.dumps({
    "metrics": result.metrics,
    "run_dir": str(result.run_dir),
    "per_query": len(result.per_query),
    "ties": result.provenance["conventions"]["ties"],
    "eval_kind": evaluation.kind,
    "eval_ties": evaluation.provenance["conventions"]["ties"],
    "loaded": sorted(r.kind for r in every),
}))
"""


def test_run_evaluate_and_load_from_python(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(got["metrics"]) >= {"map@all", "prec@100"}
    assert all(0.0 <= v <= 1.0 for v in got["metrics"].values())
    assert (Path(got["run_dir"]) / "result.json").is_file()
    assert got["per_query"] == 40  # one value per query sketch of the unseen classes
    assert "shared" in got["ties"] and "index" in got["eval_ties"]
    assert got["eval_kind"] == "evaluation" and got["loaded"].count("run") == 1
