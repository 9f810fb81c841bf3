"""``sbirbench report RUN``: pictures and a Markdown page a person can look at."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--data-root",
    type=click.Path(),
    help="Where the run's data set is now (default: where it was).",
)
@click.option(
    "--per-class",
    type=int,
    default=2,
    show_default=True,
    help="Query sketches per unseen class in the retrieval grid.",
)
@click.option("--tile", type=int, default=64, show_default=True, help="Tile size in pixels.")
@click.option("--html", is_flag=True, help="Also write report/index.html, one self-contained page.")
def report_command(run: Path, data_root: str | None, per_class: int, tile: int, html: bool) -> None:
    """Write RUN/report/: retrieval grid, per-class AP chart and table, training curves,
    and report.md with the metrics and the run's provenance."""
    from sbirbench.report import write_report

    written = write_report(run, per_class=per_class, tile=tile, data_root=data_root, html=html)
    click.echo(f"wrote {written}")
