"""``sbirbench data check``, ``show`` and ``export``: is the data what I think it is?"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

DATA_OPTIONS = [
    click.option("--dataset", required=True, help="Data set plugin."),
    click.option("--data-root", type=click.Path(), help="Folder of the data set."),
    click.option("--split", help="Class split."),
    click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Data-set option (KEY or dataset.KEY), e.g. unseen=a,b.",
    ),
]


def data_options(func: Any) -> Any:
    for option in reversed(DATA_OPTIONS):
        func = option(func)
    return func


def _dataset(params: dict[str, Any]):
    from sbirbench.pipeline.resolve import build_dataset

    overrides = [o if o.startswith("dataset.") else f"dataset.{o}" for o in params["overrides"]]
    return build_dataset(params["dataset"], params["split"], params["data_root"], overrides)


@click.group("data")
def data_group() -> None:
    """Check a data set on disk, or look at it."""


@data_group.command("check")
@data_options
@click.option("--quick", is_flag=True, help="Do not decode every image.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(quick: bool, as_json: bool, **params: Any) -> None:
    """Validate the tree: layout, classes, images per subset, missing and empty classes,
    unreadable files. Exits non-zero when the data set cannot be used."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from sbirbench.data.check import check, count_images

    dataset = _dataset(params)
    console = Console(stderr=as_json)
    if quick:
        report = check(dataset, decode=False)
    else:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("decoding images", total=count_images(dataset))
            report = check(dataset, decode=True, progress=lambda n: bar.advance(task, n))
    facts = report.facts
    if as_json:
        click.echo(
            json.dumps(
                {
                    **facts,
                    "unreadable": report.unreadable,
                    "problems": report.problems,
                    "usable": report.usable,
                },
                indent=2,
            )
        )
    else:
        table = Table(
            title=f"{facts['name']} (split {facts['split']})",
            title_justify="left",
            show_header=False,
        )
        table.add_row("layout", f"{facts.get('layout')}: {facts.get('layout_description', '')}")
        table.add_row("root", str(facts.get("root")))
        table.add_row("classes", f"{facts.get('seen')} seen, {facts.get('unseen')} unseen")
        for subset in ("train", "test"):
            counts = facts.get("counts", {}).get(subset, {})
            table.add_row(
                f"{subset} images",
                f"{counts.get('sketch', 0)} sketches, {counts.get('photo', 0)} photos",
            )
        for key in ("missing_classes", "empty_classes", "unknown_folders"):
            values = facts.get(key) or []
            table.add_row(
                key.replace("_", " "),
                f"{len(values)}"
                + (
                    f": {', '.join(values[:10])}" + (" ..." if len(values) > 10 else "")
                    if values
                    else ""
                ),
            )
        if facts.get("excluded"):
            table.add_row("excluded", f"{facts['excluded']} (outlier list)")
        table.add_row(
            "unreadable",
            "not checked (--quick)"
            if quick
            else f"{len(report.unreadable)}"
            + (f": {', '.join(report.unreadable[:5])}" if report.unreadable else ""),
        )
        console.print(table)
        for problem in report.problems:
            console.print(f"[red]cannot be used: {problem}[/red]")
        if report.usable:
            console.print("[green]usable[/green]")
    if not report.usable:
        sys.exit(1)


@data_group.command("show")
@data_options
@click.option("--subset", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--classes", help="Comma list of classes (default: every class of the subset).")
@click.option("--per-class", type=int, default=4, show_default=True)
@click.option("--size", type=int, default=96, show_default=True, help="Tile size in pixels.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("contact-sheet.png"), show_default=True
)
def show_command(
    subset: str, classes: str | None, per_class: int, size: int, out: Path, **params: Any
) -> None:
    """Write a PNG contact sheet: per class, a few sketches and photos."""
    from sbirbench.data.check import contact_sheet
    from sbirbench.runtime import atomic

    dataset = _dataset(params)
    chosen = [c.strip() for c in classes.split(",")] if classes else None
    sheet = contact_sheet(
        dataset,
        subset="train" if subset == "train" else "test",
        classes=chosen,
        per_class=per_class,
        size=size,
    )
    atomic.atomic_write(out, lambda handle: sheet.save(handle, format="PNG"))
    click.echo(f"wrote {out} ({sheet.width}x{sheet.height})")


@data_group.command("export")
@data_options
@click.option("--subset", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option(
    "--modality", type=click.Choice(["photo", "sketch"]), default="photo", show_default=True
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write.")
def export_command(subset: str, modality: str, out: Path, **params: Any) -> None:
    """Write a subset's images as PNG files, one folder per class (for example the
    embedded data set's photos, as a folder for `sbirbench index`)."""
    from sbirbench.data.check import export_images

    dataset = _dataset(params)
    unreadable: list[str] = []
    written, kept = export_images(
        dataset,
        "train" if subset == "train" else "test",
        "photo" if modality == "photo" else "sketch",
        out,
        unreadable,
    )
    click.echo(f"{out}: {written} images written, {kept} already there")
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else "")
        click.echo(f"left out {len(unreadable)} unreadable image(s): {shown}", err=True)
