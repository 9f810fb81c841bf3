"""The Python API: what the command line calls, for notebooks and sweep tools.

    import sbirbench
    result = sbirbench.run("pskd", dataset="synthetic", epochs=2, seed=1)
    result.metrics["map@all"], result.run_dir, result.provenance

torch is imported when a run or an evaluation starts, not when sbirbench is imported.
Errors a user can cause are :class:`sbirbench.errors.UserError` with a one-line message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sbirbench.errors import UserError
from sbirbench.pipeline.options import RunOptions
from sbirbench.results.result import RESULT, Result, find_results, load_result


def run(
    method: str,
    *,
    out: str | Path = "runs",
    resume: bool = False,
    workers: int | None = None,
    log: str = "rich",
    eval_batch_size: int | None = None,
    **options: Any,
) -> Result:
    """Train ``method`` and evaluate it; the :class:`Result` of the run.

    ``options`` are the command line's run options as keywords: ``dataset``,
    ``benchmark``, ``split``, ``data_root``, ``backbone``, ``epochs``, ``batch_size``,
    ``seed``, ``preset``, ``overrides`` (``["lr=1e-3", "backbone.img_size=128"]``),
    ``device``, ``precision``, ``metrics``, ``ap``, ``ties``, ``hash_bits``, ``select``.
    ``out`` is the results folder; ``resume`` continues (or returns) the latest run of
    the same configuration; ``log`` is "rich", "quiet" or "jsonl". Under torchrun every
    process calls this and every process gets the result.
    """
    from sbirbench.runtime.distributed import launched_by_torchrun

    world = int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else 1
    return run_options(
        RunOptions.from_keywords(method, world_size=world, **options),
        out=out,
        resume=resume,
        workers=workers,
        log=log,
        eval_batch_size=eval_batch_size,
    )


def run_options(
    options: RunOptions,
    *,
    out: str | Path = "runs",
    resume: bool = False,
    workers: int | None = None,
    log: str = "rich",
    eval_batch_size: int | None = None,
) -> Result:
    """:func:`run` from a :class:`RunOptions` (what the command line builds)."""
    from sbirbench.pipeline.execute import execute
    from sbirbench.pipeline.resolve import resolve

    data = execute(
        resolve(options),
        out=Path(out),
        resume=resume,
        workers=workers,
        log_mode=log,
        eval_batch_size=eval_batch_size,
    )
    return Result.from_dict(_stored(data), Path(data["run_dir"]) / RESULT)


def evaluate(
    checkpoint: str | Path,
    *,
    output: str | Path | None = None,
    batch_size: int | None = None,
    workers: int = 0,
    cache: bool = True,
    log: str = "rich",
    **options: Any,
) -> Result:
    """Evaluate a saved model (a run's ``checkpoint.pt`` or its folder) on the data set
    and protocol of ``options`` (``dataset``, ``split``, ``data_root``, ``metrics``,
    ``ap``, ``ties``, ``hash_bits``, ``overrides``, ``device``, ``precision``; by default
    the ones it was trained with). Writes ``eval-<benchmark>.json`` beside it (or
    ``output``)."""
    return evaluate_options(
        checkpoint,
        RunOptions.from_keywords("-", **options),
        output=output,
        batch_size=batch_size,
        workers=workers,
        cache=cache,
        log=log,
    )


def evaluate_options(
    checkpoint: str | Path,
    options: RunOptions,
    *,
    output: str | Path | None = None,
    batch_size: int | None = None,
    workers: int = 0,
    cache: bool = True,
    log: str = "rich",
) -> Result:
    """:func:`evaluate` from a :class:`RunOptions` (what the command line builds)."""
    from sbirbench.pipeline.saved import evaluate_saved

    path = Path(checkpoint)
    path = path / "checkpoint.pt" if path.is_dir() else path
    data = evaluate_saved(
        path,
        options,
        output_file=Path(output) if output else None,
        batch_size=batch_size,
        workers=workers,
        use_cache=cache,
        log_mode=log,
    )
    target = Path(output) if output else path.parent / f"eval-{data['benchmark']}.json"
    return Result.from_dict(data, target)


def load_results(path: str | Path) -> list[Result]:
    """The results in a result file, a run folder, or every one under a folder (files
    that cannot be read are left out; ``sbirbench leaderboard`` names them)."""
    path = Path(path)
    if path.is_file() or (path / RESULT).is_file():
        return [load_result(path)]
    if not path.is_dir():
        raise UserError(f"no results at {path}")
    found, _ = find_results(path)
    return [Result.from_dict(_stored(data), Path(folder) / RESULT) for folder, data in found]


def _stored(data: dict[str, Any]) -> dict[str, Any]:
    """A result as stored (without the in-memory ``run_dir``)."""
    return {k: v for k, v in data.items() if k != "run_dir"}
