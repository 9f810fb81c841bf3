"""``sbirbench run``: train a method on a data set (1..N processes), evaluate, record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from sbirbench.errors import UserError
from sbirbench.pipeline.options import RunOptions
from sbirbench.results.result import rerank_label
from sbirbench.tracking import TRACKERS

RUN_OPTIONS = [
    click.option("--dataset", help="Data set plugin (see `sbirbench list datasets`)."),
    click.option(
        "--benchmark", help="Benchmark from benchmarks.toml (sets data set, split, metrics)."
    ),
    click.option("--split", help="Class split of the data set (e.g. zeroshot, random)."),
    click.option(
        "--data-root",
        type=click.Path(),
        help="Folder of the data set (else $SBIRBENCH_DATA/<dataset>).",
    ),
    click.option(
        "--source-root",
        type=click.Path(),
        help="Cross-data-set benchmarks: folder of the source data set that trains "
        "(else $SBIRBENCH_DATA/<source>).",
    ),
    click.option("--backbone", help="Backbone plugin; NAME:MODEL sets its model (timm:resnet50)."),
    click.option("--epochs", type=int, help="Epochs of the main stage (--set epochs=N)."),
    click.option("--batch-size", type=int, help="Photos per step per process."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--preset", help="Method preset (default: the one for the benchmark)."),
    click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Config override: KEY (method), backbone.KEY, dataset.KEY. Repeatable.",
    ),
    click.option(
        "--metrics",
        help="Comma list, e.g. map@all,prec@100 (default: the benchmark's plus the standard four).",
    ),
    click.option(
        "--ap",
        type=click.Choice(["interpolated", "sklearn"]),
        help="AP convention (default: the benchmark's).",
    ),
    click.option(
        "--ties",
        type=click.Choice(["shared", "index"]),
        default="shared",
        show_default=True,
        help="Tied scores: one shared threshold (order-free) or "
        "gallery-index order (the TVT/PSKD code).",
    ),
    click.option(
        "--select",
        type=click.Choice(["last", "best-epoch"]),
        default="last",
        show_default=True,
        help="The model to report: after the last epoch, or the "
        "epoch best on the test set (the TVT/PSKD release's tables; labelled).",
    ),
    click.option(
        "--tracker",
        "trackers",
        multiple=True,
        type=click.Choice(list(TRACKERS)),
        help="Log losses, learning rates, throughput, metrics and the config "
        "(repeatable; tensorboard, mlflow and wandb are extras of the same names).",
    ),
    click.option(
        "--hash-bits",
        type=int,
        help="Also evaluate PCA+ITQ binary codes of this many bits (e.g. 64).",
    ),
]


def run_options(func: Any) -> Any:
    for option in reversed(RUN_OPTIONS):
        func = option(func)
    return func


def options_from(method: str, params: dict[str, Any], world_size: int) -> RunOptions:
    """RunOptions from parsed command-line parameters."""
    metrics = tuple(m for m in params["metrics"].split(",") if m) if params.get("metrics") else None
    return RunOptions(
        method=method,
        dataset=params.get("dataset"),
        benchmark=params.get("benchmark"),
        split=params.get("split"),
        data_root=params.get("data_root"),
        source_root=params.get("source_root"),
        backbone=params.get("backbone"),
        epochs=params.get("epochs"),
        batch_size=params.get("batch_size"),
        seed=params.get("seed", 0),
        preset=params.get("preset"),
        overrides=tuple(params.get("overrides", ())),
        device=params.get("device"),
        precision=params.get("precision"),
        world_size=world_size,
        metrics=metrics,
        ap=params.get("ap"),
        hash_bits=params.get("hash_bits"),
        ties=params.get("ties") or "shared",
        select=params.get("select") or "last",
        trackers=tuple(params.get("trackers") or ()),
    )


def worker_argv(command: click.Command, method: str, params: dict[str, Any]) -> list[str]:
    """The ``run`` command line for launched workers: every given option (by its own
    flag, from click's definitions) except --nproc."""
    argv = ["run", method]
    for param in command.params:
        if not isinstance(param, click.Option) or param.name == "nproc":
            continue
        value = params.get(param.name)
        if value is None or value is False or value == ():
            continue
        flag = param.opts[0]
        if param.is_flag:
            argv.append(flag)
        elif param.multiple:
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


@click.command("run")
@click.argument("method")
@run_options
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Results folder: <out>/<benchmark>/<method>/<run-id>/.",
)
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="Processes on this machine (launched with torch.distributed.run).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Default: cuda if available.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    help="Autocast precision (default: bf16 on cuda, fp32 on cpu).",
)
@click.option(
    "--resume", is_flag=True, help="Continue the latest unfinished run of this configuration."
)
@click.option("--workers", type=int, help="Data-loader processes per rank (default: 0 on cpu).")
@click.option(
    "--log-format",
    "log_mode",
    type=click.Choice(["rich", "quiet", "jsonl"]),
    default="rich",
    show_default=True,
    help="Console: progress bars, nothing, or JSON lines.",
)
@click.option("--eval-batch-size", type=int, help="Images per forward pass in evaluation.")
@click.option("--report", is_flag=True, help="Also write the run's report (sbirbench report).")
def run_command(method: str, **params: Any) -> None:
    """Train METHOD, evaluate it on the unseen classes, and write result.json.

    \b
    sbirbench run pskd --dataset synthetic
    sbirbench run pskd --benchmark tuberlin-30 --data-root ~/data/TU-Berlin --nproc 2
    torchrun --nnodes 2 --nproc-per-node 8 ... -m sbirbench run pskd --benchmark sketchy-25
    """
    from sbirbench.api import run_options
    from sbirbench.runtime.distributed import launched_by_torchrun

    nproc = params["nproc"]
    if nproc < 1:
        raise UserError("--nproc must be at least 1")
    inside = launched_by_torchrun()
    world = int(os.environ["WORLD_SIZE"]) if inside else nproc
    options = options_from(method, params, world)
    if nproc > 1 and not inside:
        from sbirbench.pipeline.resolve import resolve

        from .launch import launch

        resolve(options).build_dataset()  # fail here, once, rather than in N workers
        launch(nproc, worker_argv(click.get_current_context().command, method, params))
        return
    result = run_options(
        options,
        out=params["out"],
        resume=params["resume"],
        workers=params["workers"],
        log=params["log_mode"],
        eval_batch_size=params["eval_batch_size"],
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print_summary(result.data, params["log_mode"])
        if params["report"] and result.run_dir is not None:
            from sbirbench.report import write_report

            click.echo(f"report: {write_report(result.run_dir)}")


def print_summary(result: dict[str, Any], mode: str) -> None:
    """The end-of-run table (stdout), or one JSON record in jsonl mode."""
    import json

    if mode == "jsonl":
        click.echo(
            json.dumps(
                {
                    "event": "result",
                    **{
                        k: result[k]
                        for k in ("run_id", "method", "benchmark", "metrics", "wall_time")
                    },
                }
            )
        )
        return
    if mode == "quiet":
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result['method']} on {result['benchmark']} (run {result['run_id']})",
        title_justify="left",
    )
    table.add_column("")
    for metric in result["metrics"]:
        table.add_column(metric, justify="right")
    table.add_row("float", *[f"{v:.4f}" for v in result["metrics"].values()])
    if "reranked_metrics" in result:
        table.add_row(
            rerank_label(result["rerank"]["k"]),
            *[f"{v:.4f}" for v in result["reranked_metrics"].values()],
        )
    if "hashed_metrics" in result:
        table.add_row(
            f"{result['hash']['bits']}-bit",
            *[f"{v:.4f}" for v in result["hashed_metrics"].values()],
        )
    console = Console()
    console.print(table)
    wall = result["wall_time"]
    times = ", ".join(
        [
            *(f"stage {k} {v:.1f} s" for k, v in wall.get("stages", {}).items()),
            *(f"{k} {wall[k]:.1f} s" for k in ("evaluation", "total") if k in wall),
        ]
    )
    console.print(f"[dim]{result['queries']} queries x {result['gallery']} gallery; {times}[/dim]")
