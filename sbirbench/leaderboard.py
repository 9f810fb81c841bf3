"""Tables from stored results: leaderboards per benchmark version, and run comparisons.

Rows group runs of the same method and configuration (the seed aside): mean ± sample
standard deviation over seeds and the number of runs. Published numbers from
benchmarks.toml appear as marked rows. Formats: rich, github, csv, json, latex.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sbirbench.benchmarks import BenchmarkFile
from sbirbench.config import config_hash
from sbirbench.errors import UserError

FORMATS = ("rich", "github", "csv", "json", "latex")
PUBLISHED_MARK = "†"


@dataclass
class Row:
    label: str
    runs: int
    values: dict[str, tuple[float, float | None]]  # metric -> (mean, std or None)
    published: bool = False
    run_ids: list[str] = field(default_factory=list)


@dataclass
class Board:
    benchmark: str
    version: int | None
    metrics: list[str]
    rows: list[Row]

    @property
    def title(self) -> str:
        return f"{self.benchmark}" + (f" (v{self.version})" if self.version is not None else "")

    def best(self) -> dict[str, float]:
        """Best measured mean per metric (higher is better for every metric)."""
        out = {}
        for metric in self.metrics:
            values = [r.values[metric][0] for r in self.rows if metric in r.values
                      and not r.published]
            if values:
                out[metric] = max(values)
        return out


def variant_key(result: dict[str, Any]) -> str:
    """The configuration of a result without its seed (runs that differ only by seed)."""
    config = dict(result.get("config", {}))
    for key in ("seed", "data_root", "device", "metrics", "hash_bits"):
        config.pop(key, None)
    return config_hash({"method": result["method"], **config})


def variant_label(result: dict[str, Any]) -> str:
    label = result["method"]
    extra = [*(["preset " + result["preset"]] if result.get("preset") else []),
             *result.get("overrides", [])]
    if result.get("backbone"):
        extra.insert(0, result["backbone"])
    return label + (f" [{', '.join(extra)}]" if extra else "")


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def build_boards(results: Iterable[dict[str, Any]], benchmarks: BenchmarkFile | None,
                 benchmark: str | None = None, hashed: bool = False) -> list[Board]:
    """One board per (benchmark, version) found among ``results``."""
    groups: dict[tuple[str, int | None], dict[str, list[dict]]] = defaultdict(
        lambda: defaultdict(list))
    for result in results:
        if benchmark and result.get("benchmark") != benchmark:
            continue
        if hashed and "hashed_metrics" not in result:
            continue
        key = (result["benchmark"], result.get("benchmark_version"))
        groups[key][variant_key(result)].append(result)
    boards = []
    for (name, version), variants in sorted(groups.items(), key=lambda kv: str(kv[0])):
        bench = benchmarks.benchmarks.get(name) if benchmarks else None
        first = next(iter(variants.values()))[0]
        metrics = list(bench.metrics) if bench else list(first["metrics"])
        rows = []
        for runs in variants.values():
            source = "hashed_metrics" if hashed else "metrics"
            values = {m: mean_std([r[source][m] for r in runs]) for m in metrics
                      if all(m in r[source] for r in runs)}
            rows.append(Row(variant_label(runs[0]), len(runs), values,
                            run_ids=[r["run_id"] for r in runs]))
        rows.sort(key=lambda r: -r.values.get(metrics[0], (float("-inf"),))[0])
        if bench and bench.version == version:
            for pub in bench.published:
                if bool(pub.hash_bits) == hashed:
                    rows.append(Row(f"{pub.label} {PUBLISHED_MARK}", 0,
                                    {m: (v, None) for m, v in pub.metrics.items()},
                                    published=True))
        boards.append(Board(name, version, metrics, rows))
    return boards


def _cell(value: tuple[float, float | None] | None) -> str:
    if value is None:
        return "-"
    mean, std = value
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def render(boards: list[Board], fmt: str) -> str:
    """The boards as text in ``fmt`` (rich renders to a plain-text string here)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([{
            "benchmark": b.benchmark, "version": b.version, "metrics": b.metrics,
            "rows": [{"label": r.label, "runs": r.runs, "published": r.published,
                      "run_ids": r.run_ids,
                      **{m: {"mean": v[0], "std": v[1]} for m, v in r.values.items()}}
                     for r in b.rows]} for b in boards], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["benchmark", "version", "method", "runs", "published", "metric",
                         "mean", "std"])
        for b in boards:
            for r in b.rows:
                for m in b.metrics:
                    if m in r.values:
                        mean, std = r.values[m]
                        writer.writerow([b.benchmark, b.version, r.label, r.runs, r.published, m,
                                         f"{mean:.6f}", "" if std is None else f"{std:.6f}"])
        return buffer.getvalue()
    if fmt == "rich":
        return _render_rich(boards)
    from tabulate import tabulate

    chunks = []
    for b in boards:
        best = b.best()
        headers = ["method", "runs", *b.metrics]
        rows = []
        for r in b.rows:
            cells = []
            for m in b.metrics:
                text = _cell(r.values.get(m))
                if not r.published and m in best and m in r.values and r.values[m][0] == best[m]:
                    text = f"**{text}**" if fmt == "github" else f"\\textbf{{{text}}}"
                cells.append(text)
            rows.append([r.label, r.runs or "", *cells])
        table = tabulate(rows, headers=headers, tablefmt="github" if fmt == "github"
                         else "latex_raw", disable_numparse=True)
        if fmt == "latex":
            table = table.replace("±", r"$\pm$")
        chunks.append((f"### {b.title}\n\n" if fmt == "github" else f"% {b.title}\n") + table)
    published = any(r.published for b in boards for r in b.rows)
    note = (f"\n\n{PUBLISHED_MARK} published result (benchmarks.toml)"
            if fmt == "github" and published else "")
    return "\n\n".join(chunks) + note


def _render_rich(boards: list[Board]) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(record=True, width=120, file=io.StringIO())
    for b in boards:
        best = b.best()
        table = Table(title=b.title, title_justify="left")
        table.add_column("method")
        table.add_column("runs", justify="right")
        for m in b.metrics:
            table.add_column(m, justify="right")
        for r in b.rows:
            cells = []
            for m in b.metrics:
                text = _cell(r.values.get(m))
                if not r.published and m in best and m in r.values and r.values[m][0] == best[m]:
                    text = f"[bold]{text}[/bold]"
                cells.append(text)
            style = "dim" if r.published else None
            table.add_row(escape(r.label), str(r.runs or ""), *cells, style=style)
        console.print(table)
    return console.export_text(styles=True)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


# What the two results were measured on and how, beside their training configuration.
MEASURED_BY = ("benchmark", "dataset", "split", "conventions", "hash")


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Metric deltas (b - a) and configuration differences of two results."""
    metrics = [m for m in a["metrics"] if m in b["metrics"]]
    deltas = {m: {"a": a["metrics"][m], "b": b["metrics"][m],
                  "delta": b["metrics"][m] - a["metrics"][m]} for m in metrics}
    fa, fb = (flatten({**r.get("config", {}), **{k: r.get(k) for k in MEASURED_BY}})
              for r in (a, b))
    changed = {k: {"a": fa.get(k), "b": fb.get(k)} for k in sorted(set(fa) | set(fb))
               if fa.get(k) != fb.get(k)}
    return {"a": a["run_id"], "b": b["run_id"], "metrics": deltas, "config": changed}
