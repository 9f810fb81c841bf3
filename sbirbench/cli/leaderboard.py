"""``sbirbench leaderboard`` and ``sbirbench compare``: tables from stored results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from sbirbench.results.tables import FORMATS


@click.command("leaderboard")
@click.option("--benchmark", help="Only this benchmark.")
@click.option(
    "--runs",
    type=click.Path(path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder searched for result.json files.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="rich", show_default=True)
@click.option("--hashed", is_flag=True, help="Binary-code (--hash-bits) results instead.")
@click.option(
    "--reference",
    is_flag=True,
    help="Quoted (published) rows beside the reproduced rows of the same method.",
)
def leaderboard_command(
    benchmark: str | None, runs: Path, fmt: str, hashed: bool, reference: bool
) -> None:
    """Leaderboards from stored results: one table per benchmark version, mean and 95%
    interval over seeds, chance, wall time, published numbers marked †. A saved model
    evaluated under another benchmark (`sbirbench eval --benchmark`) is a row there."""
    from sbirbench.errors import UserError
    from sbirbench.protocol.benchmarks import load_benchmarks
    from sbirbench.results.leaderboard import build_boards
    from sbirbench.results.result import find_results, unfinished_runs
    from sbirbench.results.tables import render

    if not runs.is_dir():
        raise UserError(f"no results folder {runs} (run something first, or pass --runs DIR)")
    found, skipped = find_results(runs, evaluations=True)
    for item in skipped:
        click.echo(f"warning: skipped {item.path}: {item.reason}", err=True)
    unfinished = unfinished_runs(runs)
    if unfinished:
        shown = ", ".join(str(p) for p in unfinished[:5]) + (" ..." if len(unfinished) > 5 else "")
        click.echo(
            f"note: {len(unfinished)} unfinished run(s) without a result, not in the "
            f"tables (`sbirbench run ... --resume` finishes one): {shown}",
            err=True,
        )
    results = [r for _, r in found if r.get("kind") != "evaluation" or _elsewhere(r)]
    boards = build_boards(results, load_benchmarks(), benchmark, hashed)
    if not boards:
        where = f" for benchmark {benchmark}" if benchmark else ""
        also = f" ({len(unfinished)} unfinished run(s), listed above)" if unfinished else ""
        raise UserError(f"no results{where} under {runs}{also}")
    if reference:
        from sbirbench.results.reference import render_reference

        click.echo(render_reference(boards, fmt).rstrip())
        return
    if fmt == "html":
        from sbirbench.report.html import leaderboard_page

        click.echo(leaderboard_page(boards).rstrip())
        return
    click.echo(render(boards, fmt).rstrip())


def _elsewhere(evaluation: dict[str, Any]) -> bool:
    """A saved model evaluated under the fine-grained protocol of the data set it was
    trained on (`eval --benchmark sketchy-21-fg`): a row of that table. Other
    evaluations repeat the run's own result or test a model on data it may have trained
    on (another data set's unseen classes, a GZS hold-out), so they stay out."""
    config = evaluation.get("config", {})
    return (
        evaluation.get("protocol") == "fg"
        and evaluation.get("benchmark") != config.get("benchmark")
        and evaluation.get("dataset") == config.get("dataset")
        and evaluation.get("split") == config.get("dataset_config", {}).get("split")
    )


@click.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["rich", "json"]), default="rich", show_default=True
)
def compare_command(run_a: Path, run_b: Path, fmt: str) -> None:
    """Metric deltas (B - A) and configuration differences of two runs (folders or
    result.json files)."""
    from sbirbench.results.leaderboard import compare
    from sbirbench.results.result import read_result

    diff = compare(read_result(run_a), read_result(run_b))
    if fmt == "json":
        click.echo(json.dumps(diff, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"A = {diff['a']}   B = {diff['b']}", title_justify="left")
    for column in ("metric", "A", "B", "B - A"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for metric, d in diff["metrics"].items():
        color = "green" if d["delta"] > 0 else "red" if d["delta"] < 0 else ""
        table.add_row(
            metric,
            f"{d['a']:.4f}",
            f"{d['b']:.4f}",
            f"[{color}]{d['delta']:+.4f}[/{color}]" if color else "0",
        )
    console.print(table)
    if diff["config"]:
        changes = Table(title="configuration differences", title_justify="left")
        for column in ("key", "A", "B"):
            changes.add_column(column)
        for key, d in diff["config"].items():
            changes.add_row(key, str(d["a"]), str(d["b"]))
        console.print(changes)
    else:
        console.print("same configuration")
