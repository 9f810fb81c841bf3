"""Leaderboards per benchmark version, and run comparisons, from stored results.

Rows group runs of the same method and configuration (the seed aside): the mean, its 95%
Student-t interval over seeds, the sample standard deviation, the number of runs and the
mean wall time per run. Each board has a chance row (the expected metrics of a random
ranking of its test set, from the results) and the published numbers of benchmarks.toml
as marked rows. The rows and boards: :mod:`sbirbench.results.rows`; rendering:
:mod:`sbirbench.results.tables`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sbirbench.config import config_hash
from sbirbench.protocol.benchmarks import BenchmarkFile
from sbirbench.results.result import rerank_label
from sbirbench.results.rows import PUBLISHED_MARK, Board, Duplicate, Row
from sbirbench.results.stats import Interval, t_interval

CHANCE_LABEL = "chance (random ranking)"


#: Config entries that do not make a different configuration (where and how it ran).
NOT_SETTINGS = ("seed", "data_root", "device", "metrics", "hash_bits", "overrides", "preset")
_SHORT = {"method_config.": "", "backbone_config.": "backbone.", "dataset_config.": "dataset."}


def settings(result: dict[str, Any]) -> dict[str, Any]:
    """The result's configuration without what does not change the trained model or the
    measurement: its seed, paths, device, and the metrics asked for."""
    config = result.get("config", {})
    return {k: v for k, v in config.items() if k not in NOT_SETTINGS}


def variant_key(result: dict[str, Any]) -> str:
    """The configuration of a result without its seed (runs that differ only by seed)."""
    return config_hash({"method": result["method"], **settings(result)})


def _base(result: dict[str, Any]) -> tuple[str, ...]:
    """Method, backbone, preset (and a best-epoch selection): the start of a label."""
    parts = [result.get("backbone") or ""]
    parts.append(f"preset {result['preset']}" if result.get("preset") else "")
    if result.get("model_selection", {}).get("rule") == "best-epoch":
        parts.append("best epoch on the test set")
    return (result["method"], *(p for p in parts if p))


def labels(firsts: list[dict[str, Any]]) -> list[str]:
    """A label per configuration: method, backbone and preset, plus every setting that
    differs between configurations of the same method, backbone and preset."""
    bases = [_base(r) for r in firsts]
    flat = [flatten(settings(r)) for r in firsts]
    out = []
    for base, mine in zip(bases, flat, strict=True):
        group = [f for b, f in zip(bases, flat, strict=True) if b == base]
        keys = sorted({k for f in group for k in f if any(g.get(k) != f.get(k) for g in group)})
        parts = [
            *base[1:],
            *(f"{_short(k)}={_shorten(str(mine.get(k, '-')), group, k)}" for k in keys),
        ]
        out.append(base[0] + (f" [{', '.join(parts)}]" if parts else ""))
    return out


def _shorten(text: str, group: list[dict[str, Any]], key: str) -> str:
    """A long value cut to a prefix (hashes), else to a suffix (paths under one folder),
    else whole: whichever still tells the group's values apart."""
    if len(text) <= 24:
        return text
    values = {str(f.get(key, "-")) for f in group}
    for cut in (lambda t: t[:12] + "...", lambda t: "..." + t[-21:]):
        if len({cut(v) if len(v) > 24 else v for v in values}) == len(values):
            return cut(text)
    return text


def _short(key: str) -> str:
    for prefix, short in _SHORT.items():
        if key.startswith(prefix):
            return short + key[len(prefix) :]
    return key


def unique_seeds(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Duplicate]]:
    """One run per seed (the latest finished), and the repeats left out."""
    by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_seed[int(run.get("seed", 0))].append(run)
    kept, duplicates = [], []
    for seed, same in sorted(by_seed.items()):
        same.sort(key=lambda r: (str(r.get("finished", "")), r["run_id"]))
        kept.append(same[-1])
        duplicates += [Duplicate(same[-1]["run_id"], r["run_id"], seed) for r in same[:-1]]
    return kept, duplicates


#: The result field of a second retrieval stage (sbirbench.interfaces.Reranker).
RERANKED = "reranked_metrics"


def build_boards(
    results: Iterable[dict[str, Any]],
    benchmarks: BenchmarkFile | None,
    benchmark: str | None = None,
    hashed: bool = False,
) -> list[Board]:
    """One board per (benchmark, version) found among ``results``."""
    groups: dict[tuple[str, int | None], dict[str, list[dict]]] = defaultdict(
        lambda: defaultdict(list)
    )
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
        metrics = list(bench.metrics) if bench else list(first[source])
        kept, duplicates = [], []
        for runs in variants.values():
            unique, repeated = unique_seeds(runs)
            kept.append(unique)
            duplicates += repeated
        names = labels([runs[0] for runs in kept])
        rows = [
            _measured_row(label, runs, metrics, source)
            for label, runs in zip(names, kept, strict=True)
        ]
        # A two-stage method's re-ranked results are a row of their own.
        for label, runs in zip(names, kept, strict=True):
            if not hashed and all(RERANKED in r for r in runs):
                k = runs[0].get("rerank", {}).get("k", "?")
                second = _measured_row(f"{label} ({rerank_label(k)})", runs, metrics, RERANKED)
                second.rerank_k = k
                rows.append(second)
        rows.sort(
            key=lambda r: -r.values[metrics[0]].mean if metrics[0] in r.values else float("inf")
        )
        chance = next((r["chance"] for runs in kept for r in runs if r.get("chance")), None)
        if chance and not hashed:
            rows.append(
                Row(
                    CHANCE_LABEL,
                    0,
                    {m: Interval(v, None, 1) for m, v in chance.items() if m in metrics},
                    chance=True,
                )
            )
        if bench and bench.version == version:
            for pub in bench.published:
                if bool(pub.hash_bits) == hashed:
                    rows.append(
                        Row(
                            f"{pub.label} {PUBLISHED_MARK}",
                            0,
                            {m: Interval(v, None, 1) for m, v in pub.metrics.items()},
                            published=True,
                            rerank_k="all" if pub.reranked else None,
                        )
                    )
        boards.append(Board(name, version, metrics, rows, duplicates))
    return boards


def _measured_row(label: str, runs: list[dict[str, Any]], metrics: list[str], source: str) -> Row:
    values, std = {}, {}
    for m in metrics:
        if all(m in r.get(source, {}) for r in runs):
            series = [r[source][m] for r in runs]
            values[m] = t_interval(series)
            std[m] = statistics.stdev(series) if len(series) > 1 else None
    totals = [r["wall_time"]["total"] for r in runs if "total" in r.get("wall_time", {})]
    return Row(
        label,
        len(runs),
        values,
        std,
        method=runs[0]["method"],
        run_ids=[r["run_id"] for r in runs],
        run_dirs=[r["run_dir"] for r in runs if r.get("run_dir")],
        seconds=statistics.fmean(totals) if totals else None,
    )


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
    deltas = {
        m: {"a": a["metrics"][m], "b": b["metrics"][m], "delta": b["metrics"][m] - a["metrics"][m]}
        for m in metrics
    }
    fa, fb = (
        flatten({**r.get("config", {}), **{k: r.get(k) for k in MEASURED_BY}}) for r in (a, b)
    )
    changed = {
        k: {"a": fa.get(k), "b": fb.get(k)}
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    }
    return {"a": a["run_id"], "b": b["run_id"], "metrics": deltas, "config": changed}
