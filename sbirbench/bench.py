"""Suites: run methods x variants x benchmarks x seeds, skip what is finished, compare.

A job is finished when a result of its configuration hash exists; an unfinished run of
it is resumed. The comparison table (mean and 95% interval over seeds, best per column
in bold, chance and published rows, paired comparisons over queries) is written as
Markdown and CSV to ``<out>/suites/<suite>/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbirbench.pipeline.bind import BoundRun, bind
from sbirbench.pipeline.options import RunOptions
from sbirbench.pipeline.resolve import resolve
from sbirbench.pipeline.store import finished_result
from sbirbench.protocol.benchmarks import BenchmarkFile, Suite
from sbirbench.results.leaderboard import build_boards
from sbirbench.results.paired import compare_rows, comparisons_markdown
from sbirbench.results.tables import render
from sbirbench.runtime import atomic


@dataclass(frozen=True)
class Job:
    method: str
    benchmark: str
    seed: int
    variant: str
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return f"{self.method}{variant} on {self.benchmark}, seed {self.seed}"


def jobs(suite: Suite) -> list[Job]:
    """Every run of the suite, benchmark by benchmark."""
    return [
        Job(method, benchmark, seed, variant, suite.overrides + overrides)
        for benchmark in suite.benchmarks
        for method in suite.methods
        for variant, overrides in suite.variants
        for seed in suite.seeds
    ]


def bound_job(job: Job, suite: Suite, options: dict[str, Any]) -> BoundRun:
    """The resolved run of a job, bound to its data (a subset is recorded under
    ``<dataset>-<split>``, as ``sbirbench run`` does)."""
    spec = resolve(
        RunOptions(
            method=job.method,
            benchmark=job.benchmark,
            seed=job.seed,
            preset=suite.preset,
            overrides=job.overrides,
            data_root=options.get("data_root"),
            device=options.get("device"),
            precision=options.get("precision"),
        )
    )
    return bind(spec)


def run_suite(
    suite: Suite,
    out: Path,
    options: dict[str, Any],
    report: Callable[[str, Job, dict[str, Any] | None], None],
) -> list[dict[str, Any]]:
    """Run (or find) every job; ``report(event, job, result)`` is told about each."""
    from sbirbench.pipeline.execute import execute

    results = []
    for job in jobs(suite):
        bound = bound_job(job, suite, options)
        result = finished_result(
            out, bound.protocol.benchmark, bound.spec.method_name, bound.config_hash
        )
        if result is not None:
            report("skipped", job, result)
        else:
            report("started", job, None)
            result = execute(
                bound.spec, out=out, resume=True, workers=options.get("workers"), log_mode="quiet"
            )
            report("finished", job, result)
        results.append(result)
    return results


def write_comparison(
    suite: Suite, results: list[dict[str, Any]], benchmarks: BenchmarkFile, out: Path
) -> tuple[Path, Path, str]:
    """Markdown and CSV comparison tables (with the suite's paired comparisons); returns
    their paths and the rich rendering."""
    boards = build_boards(results, benchmarks)
    folder = out / "suites" / suite.name
    paired = [compare_rows(board, a, b) for board in boards for a, b in suite.paired]
    markdown = (
        f"# Suite {suite.name}\n\n{suite.description}\n\nSeeds {list(suite.seeds)}; "
        f"best measured mean per column in bold.\n\n{render(boards, 'github')}\n"
    )
    if paired:
        markdown += (
            "\n## Paired comparisons over queries\n\nPer-query values averaged over "
            "each row's runs, then paired by query.\n\n"
            f"{comparisons_markdown(paired)}\n"
        )
    md_path, csv_path = folder / "comparison.md", folder / "comparison.csv"
    atomic.write_text(md_path, markdown)
    atomic.write_text(csv_path, render(boards, "csv"))
    return md_path, csv_path, render(boards, "rich")
