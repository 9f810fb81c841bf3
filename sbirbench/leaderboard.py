"""Leaderboards per benchmark version, and run comparisons, from stored results.

Rows group runs of the same method and configuration (the seed aside): the mean, its 95%
Student-t interval over seeds, the sample standard deviation, the number of runs and the
mean wall time per run. Each board has a chance row (the expected metrics of a random
ranking of its test set, from the results) and the published numbers of benchmarks.toml
as marked rows. Rendering: :mod:`sbirbench.tables`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sbirbench.benchmarks import BenchmarkFile
from sbirbench.config import config_hash
from sbirbench.stats import Interval, t_interval

PUBLISHED_MARK = "†"
CHANCE_LABEL = "chance (random ranking)"


@dataclass
class Row:
    """One table row: measured runs of a configuration, a published result, or chance."""

    label: str
    runs: int
    values: dict[str, Interval]
    std: dict[str, float | None] = field(default_factory=dict)
    published: bool = False
    chance: bool = False
    method: str = ""
    run_ids: list[str] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)
    seconds: float | None = None  # mean wall time per run

    @property
    def measured(self) -> bool:
        return not (self.published or self.chance)


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
            values = [r.values[metric].mean for r in self.rows if metric in r.values
                      and r.measured]
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
    if result.get("model_selection", {}).get("rule") == "best-epoch":
        extra.append("best epoch on the test set")
    return label + (f" [{', '.join(extra)}]" if extra else "")


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
    source = "hashed_metrics" if hashed else "metrics"
    for (name, version), variants in sorted(groups.items(), key=lambda kv: str(kv[0])):
        bench = benchmarks.benchmarks.get(name) if benchmarks else None
        first = next(iter(variants.values()))[0]
        metrics = list(bench.metrics) if bench else list(first["metrics"])
        rows = [_measured_row(runs, metrics, source) for runs in variants.values()]
        rows.sort(key=lambda r: -r.values[metrics[0]].mean if metrics[0] in r.values
                  else float("inf"))
        chance = next((r["chance"] for runs in variants.values() for r in runs
                       if r.get("chance")), None)
        if chance and not hashed:
            rows.append(Row(CHANCE_LABEL, 0, {m: Interval(v, None, 1) for m, v in chance.items()
                                              if m in metrics}, chance=True))
        if bench and bench.version == version:
            for pub in bench.published:
                if bool(pub.hash_bits) == hashed:
                    rows.append(Row(f"{pub.label} {PUBLISHED_MARK}", 0,
                                    {m: Interval(v, None, 1) for m, v in pub.metrics.items()},
                                    published=True))
        boards.append(Board(name, version, metrics, rows))
    return boards


def _measured_row(runs: list[dict[str, Any]], metrics: list[str], source: str) -> Row:
    values, std = {}, {}
    for m in metrics:
        if all(m in r.get(source, {}) for r in runs):
            series = [r[source][m] for r in runs]
            values[m] = t_interval(series)
            std[m] = statistics.stdev(series) if len(series) > 1 else None
    totals = [r["wall_time"]["total"] for r in runs if "total" in r.get("wall_time", {})]
    return Row(variant_label(runs[0]), len(runs), values, std, method=runs[0]["method"],
               run_ids=[r["run_id"] for r in runs],
               run_dirs=[r["run_dir"] for r in runs if r.get("run_dir")],
               seconds=statistics.fmean(totals) if totals else None)

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
