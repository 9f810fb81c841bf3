"""Collect the figures of ``perf/gpu_check.sh`` into OUT/figures.json and OUT/figures.md.

python perf/gpu_check_report.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(out: Path) -> dict[str, Any]:
    """The steps' exit codes and times, and every figure the steps wrote."""
    figures: dict[str, Any] = {"steps": _load(out / "steps.json") or {}}
    figures["backbone_speed"] = _load(out / "backbone_speed.json")
    figures["metrics_speed"] = _load(out / "metrics_speed.json")
    results = sorted((out / "runs").rglob("result.json")) if (out / "runs").is_dir() else []
    run = _load(results[-1]) if results else None
    if run is not None:
        figures["pskd_run"] = {
            k: run.get(k)
            for k in ("metrics", "wall_time", "devices", "precision", "images_per_second")
        }
    return figures


def markdown(figures: dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    lines = ["# GPU check", "", "| step | exit code | seconds |", "|---|---|---|"]
    for name, step in figures["steps"].items():
        lines.append(f"| {name} | {step['exit_code']} | {step['seconds']} |")
    speed = figures.get("backbone_speed")
    if speed:
        lines += [
            "",
            f"## Backbone throughput ({speed['device']})",
            "",
            "| model | mode | precision | batch | images/s | TFLOP/s | of bf16 peak |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in speed["rows"]:
            peak = f"{100 * r['peak_fraction']:.1f}%" if r["peak_fraction"] is not None else "-"
            lines.append(
                f"| {r['model']} | {r['mode']} | {r['precision']} | {r['batch']} | "
                f"{r['images_per_second']:.1f} | {r['tflops']:.3f} | {peak} |"
            )
    metrics = figures.get("metrics_speed")
    if metrics:
        lines += [
            "",
            "## Retrieval metrics",
            "",
            f"{metrics['queries']} queries x {metrics['gallery']} gallery on "
            f"{metrics['device']}: {metrics['ours_s']:.3f} s",
        ]
    run = figures.get("pskd_run")
    if run:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in run["metrics"].items())
        lines += [
            "",
            "## PSKD on the embedded data set",
            "",
            f"{run['precision']} on {', '.join(run['devices'])}: {shown}; "
            f"{run['wall_time']['total']:.1f} s in all",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    figures = collect(out)
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / "figures.md").write_text(markdown(figures))
    failed = [n for n, s in figures["steps"].items() if s["exit_code"] != 0]
    print(
        f"wrote {out / 'figures.json'} and {out / 'figures.md'}"
        + (f"; failed steps: {', '.join(failed)}" if failed else "")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
