"""``sbirbench eval``: evaluate a saved model on a data set's unseen classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--benchmark",
    help="Benchmark to evaluate under (e.g. sketchy-21-fg after zero-shot training); "
    "sets data set, split, protocol and metrics.",
)
@click.option("--dataset", help="Data set (default: the one the model was trained on).")
@click.option("--split", help="Class split (default: the trained one).")
@click.option("--data-root", type=click.Path(), help="Folder of the data set.")
@click.option("--metrics", help="Comma list, e.g. map@all,prec@100.")
@click.option("--ap", type=click.Choice(["interpolated", "sklearn"]), help="AP convention.")
@click.option(
    "--ties",
    type=click.Choice(["shared", "index"]),
    default="shared",
    show_default=True,
    help="Tied scores: one shared threshold, or gallery order.",
)
@click.option("--hash-bits", type=int, help="Also evaluate PCA+ITQ codes of this many bits.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="dataset.KEY=VALUE",
    help="Data-set option, e.g. dataset.on_corrupt=error.",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]))
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]))
@click.option("--batch-size", type=int, default=None, help="Images per forward pass.")
@click.option("--workers", type=int, default=0, show_default=True)
@click.option("--no-cache", is_flag=True, help="Recompute features even if cached.")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="Result file (default: eval-<benchmark>.json beside the checkpoint).",
)
@click.option(
    "--log-format",
    "log_mode",
    type=click.Choice(["rich", "quiet", "jsonl"]),
    default="rich",
    show_default=True,
)
def eval_command(checkpoint: Path, **params: Any) -> None:
    """Evaluate CHECKPOINT (a run's checkpoint.pt, or its run folder)."""
    from sbirbench.api import evaluate_options
    from sbirbench.cli.run import options_from, print_summary

    options = options_from("-", {**params, "seed": 0}, world_size=1)
    result = evaluate_options(
        checkpoint,
        options,
        output=params["output"],
        batch_size=params["batch_size"],
        workers=params["workers"],
        cache=not params["no_cache"],
        log=params["log_mode"],
    )
    print_summary(result.data, params["log_mode"])
