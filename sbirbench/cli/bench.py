"""``sbirbench bench SUITE``: run a suite from benchmarks.toml and compare the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("bench")
@click.argument("suite", required=False)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option(
    "--data-root",
    type=click.Path(),
    help="Data root for the real data sets (else $SBIRBENCH_DATA).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]))
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]))
@click.option("--workers", type=int, help="Data-loader processes per run.")
@click.option("--list", "list_only", is_flag=True, help="List the suites and their jobs.")
def bench_command(suite: str | None, out: Path, list_only: bool, **options: Any) -> None:
    """Run SUITE (methods x variants x benchmarks x seeds); finished runs are skipped and
    an interrupted suite resumes. Ends with the comparison table, also written as Markdown
    and CSV to <out>/suites/<suite>/."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sbirbench.bench import jobs, run_suite, write_comparison
    from sbirbench.errors import UserError
    from sbirbench.protocol.benchmarks import load_benchmarks

    benchmarks = load_benchmarks()
    console = Console()
    if list_only or suite is None:
        if not list_only:
            raise UserError(f"name a suite; available: {', '.join(benchmarks.suites) or 'none'}")
        for name, item in benchmarks.suites.items():
            console.print(f"[bold]{name}[/bold]: {item.description} ({len(jobs(item))} runs)")
        return
    chosen = benchmarks.suite(suite)
    total = len(jobs(chosen))
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"suite {suite}", total=total)

        def report(event: str, job, result) -> None:
            if event == "started":
                bar.update(task, description=f"suite {suite}: {job.label}")
                return
            done = "done before" if event == "skipped" else "finished"
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in list(result["metrics"].items())[:2])
            label = job.label.replace(f" on {job.benchmark},", f" on {result['benchmark']},")
            bar.console.print(f"  {label}: {metrics} ({done})")
            bar.advance(task)

        results = run_suite(chosen, out, options, report)
        bar.update(task, description=f"suite {suite}")
    md_path, csv_path, table = write_comparison(chosen, results, benchmarks, out)
    click.echo(table.rstrip())
    console.print(f"[dim]written: {md_path}, {csv_path}[/dim]")
