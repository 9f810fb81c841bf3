"""``sbirbench run`` end to end: run folder (or resume), train, save, evaluate, record."""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbirbench import atomic, checkpoint, distributed
from sbirbench.console import Output, set_output
from sbirbench.engine import Trainer, TrainerOptions
from sbirbench.errors import UserError
from sbirbench.evaluate import evaluate
from sbirbench.results import (
    RunPaths,
    devices,
    git_commit,
    new_run,
    package_versions,
    read_result,
    runs_of,
    write_result,
)
from sbirbench.runspec import RunSpec
from sbirbench.selection import DESCRIPTIONS, BestEpoch


def describe_init(model: torch.nn.Module) -> dict[str, Any]:
    """How each part of the model started: every submodule with ``describe_init()``
    (backbones: weight source, file hash, data config; heads: their initialisation)."""
    return {name or "model": module.describe_init() for name, module in model.named_modules()
            if callable(getattr(module, "describe_init", None))}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (model initialisation is then the same on every rank)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _pick_run(spec: RunSpec, out: Path, resume: bool, output: Output,
              ) -> tuple[RunPaths, bool, dict[str, Any] | None]:
    """Rank 0: the run folder, whether to resume from its checkpoint, or its result."""
    earlier = runs_of(out, spec.benchmark, spec.method_name, spec.config_hash)
    if resume and earlier:
        latest = earlier[-1]
        if latest.result.exists():
            return latest, False, {**read_result(latest.result), "run_dir": str(latest.root)}
        has_state = latest.last.exists()
        output.info(f"resuming {latest.root}" + ("" if has_state else " from the start"))
        return latest, has_state, None
    if resume:
        output.info("no earlier run of this configuration: starting a new one")
    elif earlier and not earlier[-1].result.exists():
        output.info(f"[dim]an unfinished run of this configuration exists ({earlier[-1].root}); "
                    "--resume continues it[/dim]")
    return new_run(out, spec.benchmark, spec.method_name, spec.config_hash), False, None


def _build_trainer(spec: RunSpec, dataset: Any, context: distributed.Context, output: Output,
                   out: Path, workers: int | None) -> Trainer:
    """The method and its trainer, built before a run folder exists: a bad teacher or
    weights path, an unknown feature or a batch larger than the data stops the run
    without leaving an empty folder behind."""
    seed_everything(spec.options.seed)
    method = spec.build_method(len(dataset.seen_classes))
    if workers is None:  # loader processes only pay off beside a GPU
        workers = (min(8, max(1, (os.cpu_count() or 1) // context.world))
                   if context.device.type == "cuda" else 0)
    identity = {k: v for k, v in spec.identity().items()
                if k not in ("method", "method_config", "benchmark", "benchmark_version")}
    return Trainer(method, dataset, context, None, output,
                   TrainerOptions(spec.precision, workers, seed=spec.options.seed,
                                  run_identity=identity, reuse_root=out))


def execute(spec: RunSpec, *, out: Path, resume: bool = False, workers: int | None = None,
            log_mode: str = "rich", eval_batch_size: int | None = None) -> dict[str, Any]:
    """Run ``spec`` on this process's share of the job; every rank returns the result."""
    context = distributed.setup(spec.device)
    output = set_output(log_mode)
    succeeded = False
    try:
        if spec.options.world_size != context.world:
            raise UserError(f"the configuration says {spec.options.world_size} processes but "
                            f"{context.world} are running")
        dataset = spec.build_dataset()
        warning = spec.bind_data(dataset)
        if warning:
            output.warn(warning)
        trainer = _build_trainer(spec, dataset, context, output, out, workers)
        decision = None
        if context.main:
            paths, has_state, finished = _pick_run(spec, out, resume, output)
            decision = (str(paths.root), has_state, finished)
        root, has_state, finished = distributed.broadcast_object(decision, context)
        paths = RunPaths(Path(root))
        if finished is not None:
            output.info(f"this configuration already finished in {paths.root}")
            succeeded = True
            return finished
        # Every rank reads the checkpoint itself (a shared file system, as usual for
        # multi-node training), rather than receiving it pickled from rank 0.
        state = checkpoint.load(paths.last) if has_state else None
        trainer.paths = paths
        result = _train_and_evaluate(spec, trainer, state, output, eval_batch_size)
        succeeded = True
        return result
    except BaseException as exc:
        output.log_failure(exc)
        raise
    finally:
        distributed.teardown(context, succeeded=succeeded)


def _train_and_evaluate(spec: RunSpec, trainer: Trainer, state: dict[str, Any] | None,
                        output: Output, eval_batch_size: int | None) -> dict[str, Any]:
    method, dataset, context, paths = (trainer.method, trainer.dataset, trainer.context,
                                       trainer.paths)
    workers = trainer.options.workers
    started = time.time()
    if context.main:
        output.attach_log(paths.log)
        atomic.write_json(paths.config, {"config_hash": spec.config_hash, **spec.resolved()})
    output.info(f"run [bold]{paths.run_id}[/bold]: {spec.method_name} on {spec.benchmark} "
                f"({spec.dataset_name}, split {spec.dataset_config.split}), backbone "
                f"{spec.backbone_name}, preset {spec.preset or '-'}, seed {spec.options.seed}")
    batch = eval_batch_size or (256 if context.device.type == "cuda" else 64)
    tracker = None
    if spec.options.select == "best-epoch":
        primary = next((m for m in spec.metrics if m.startswith("map@")), spec.metrics[0])
        tracker = BestEpoch(method, context, paths.root, primary, lambda: evaluate(
            method, dataset, context=context, metrics=spec.metrics, ap=spec.ap,
            ties=spec.options.ties, batch_size=batch, workers=workers,
            precision=spec.precision)["metrics"])
        trainer.options.after_epoch = tracker.after_epoch
    reports = trainer.train(resume_from=state)
    selection = (tracker.restore() if tracker is not None else
                 {"rule": "last", "description": DESCRIPTIONS["last"]})
    train_seconds = time.time() - started

    if context.main:
        checkpoint.save(paths.model, {
            "format": checkpoint.MODEL_FORMAT, "config": spec.resolved(),
            "config_hash": spec.config_hash, "num_classes": len(dataset.seen_classes),
            "seen_classes": dataset.seen_classes, "state": method.model().state_dict()})
    model_hash = distributed.broadcast_object(
        file_hash(paths.model) if context.main else None, context)
    eval_start = time.time()
    scores = evaluate(method, dataset, context=context, metrics=spec.metrics, ap=spec.ap,
                      ties=spec.options.ties,
                      hash_bits=spec.options.hash_bits,
                      batch_size=batch,
                      workers=workers, precision=spec.precision, cache_key=model_hash)
    finished = time.time()
    per_query = scores.pop("per_query")
    result = {
        "run_id": paths.run_id, "method": spec.method_name, "dataset": spec.dataset_name,
        "split": spec.dataset_config.split, "benchmark": spec.benchmark,
        "benchmark_version": spec.benchmark_version, "backbone": spec.backbone_name,
        "preset": spec.preset, "overrides": list(spec.options.overrides),
        "config": spec.resolved(), "config_hash": spec.config_hash, "seed": spec.options.seed,
        **scores, "ap": spec.ap, "world_size": context.world,
        "devices": devices(spec.device), "precision": spec.precision,
        "versions": package_versions(), "git_commit": git_commit(),
        "dataset_info": dataset.describe(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(finished)),
        "wall_time": {"stages": {r.name: round(r.seconds, 3) for r in reports},
                      "training": round(train_seconds, 3),
                      "evaluation": round(finished - eval_start, 3),
                      "total": round(finished - started, 3)},
        "images_per_second": {r.name: round(r.images_per_second, 1) for r in reports},
        "reused_stages": trainer.reused,
        "unreadable_training_images": len(trainer.unreadable),
        "model_checkpoint": paths.model.name, "model_sha256": model_hash,
        "initialisation": describe_init(method.model()),
        "model_selection": selection,
        "per_query_file": paths.per_query.name,
    }
    if context.main:
        atomic.write_json(paths.per_query, per_query)
        write_result(paths, result)
        output.info(f"result: {paths.result}")
    return {"schema": 1, **result, "run_dir": str(paths.root)}
