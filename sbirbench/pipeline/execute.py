"""Step 8: a run end to end on this process's share of the job.

``execute`` walks the steps in order (bind -> RunStore -> Trainer -> evaluate ->
make_result -> RunStore writes); ``pipeline.saved.evaluate_saved`` rebuilds a saved model
and takes the last three. Every rank calls these; only rank 0 writes files.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbirbench.console import Output, set_output
from sbirbench.errors import UserError
from sbirbench.interfaces import Method
from sbirbench.runtime import checkpoint, distributed
from sbirbench.tracking import TrackedRun, TrackerSet, make_trackers
from sbirbench.weights.files import file_sha256

from .bind import BoundRun, bind
from .evaluation import Evaluation, headline
from .fine_grained import evaluate_protocol
from .resolve import RunSpec
from .result import describe_init, git_commit, make_result
from .selection import DESCRIPTIONS, BestEpoch
from .store import RunStore, choose_run
from .trainer import Trainer, TrainerOptions


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (model initialisation is then the same on every rank)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def eval_batch(context: distributed.Context, asked: int | None) -> int:
    return asked or (256 if context.device.type == "cuda" else 64)


def execute(
    spec: RunSpec,
    *,
    out: Path,
    resume: bool = False,
    workers: int | None = None,
    log_mode: str = "rich",
    eval_batch_size: int | None = None,
) -> dict[str, Any]:
    """Run ``spec``; every rank returns the result (with ``run_dir``, not stored)."""
    context = distributed.setup(spec.device)
    output = set_output(log_mode)
    succeeded = False
    try:
        if spec.options.world_size != context.world:
            raise UserError(
                f"the configuration says {spec.options.world_size} processes but "
                f"{context.world} are running"
            )
        bound = bind(spec)
        if bound.warning:
            output.warn(bound.warning)
        seed_everything(spec.options.seed)
        # the method and trainer exist before any folder: a bad teacher or weights path, an
        # unknown feature or a batch larger than the data leaves nothing behind
        method = build_method(spec, bound)
        if workers is None:  # loader processes only pay off beside a GPU
            workers = (
                min(8, max(1, (os.cpu_count() or 1) // context.world))
                if context.device.type == "cuda"
                else 0
            )
        trainer = Trainer(
            method,
            bound.dataset,
            context,
            output,
            TrainerOptions(
                spec.precision,
                workers,
                seed=spec.options.seed,
                run_identity=bound.stage_identity(),
                reuse_root=out,
            ),
        )
        decision = (
            choose_run(
                out, bound.protocol.benchmark, spec.method_name, bound.config_hash, resume, output
            )
            if context.main
            else None
        )
        decision = distributed.broadcast_object(decision, context)
        if decision.finished is not None:
            output.info(f"this configuration already finished in {decision.root}")
            succeeded = True
            return decision.finished
        trainer.store = RunStore(Path(decision.root), writer=context.main)
        for leftover in trainer.store.clean_partial_writes():
            output.info(f"[dim]removed {leftover.name}, left by an interrupted write[/dim]")
        # every rank reads the checkpoint itself (a shared file system, as usual for
        # multi-node training), rather than receiving it pickled from rank 0
        state = checkpoint.load(trainer.store.last) if decision.resume_state else None
        result = _train_and_evaluate(bound, trainer, state, output, eval_batch_size)
        succeeded = True
        return result
    except BaseException as exc:
        output.log_failure(exc)
        raise
    finally:
        distributed.teardown(context, succeeded=succeeded)


def build_method(spec: RunSpec, bound: BoundRun) -> Method:
    """The method for the bound data set; a method that trains needs a seen class."""
    seen = len(bound.dataset.seen_classes)
    with warnings.catch_warnings():  # a frozen method's heads may have no class at all
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        method = spec.build_method(seen, class_names=tuple(bound.dataset.seen_classes))
    if not seen and any(stage.settings.epochs > 0 for stage in method.stages()):
        raise UserError(
            f"{spec.dataset_name} split {spec.dataset_config.split} leaves no seen class "
            f"to train {spec.method_name} on (every class is unseen)"
        )
    return method


def _train_and_evaluate(
    bound: BoundRun,
    trainer: Trainer,
    state: dict[str, Any] | None,
    output: Output,
    eval_batch_size: int | None,
) -> dict[str, Any]:
    context, store = trainer.context, trainer.store
    assert store is not None
    if context.main:
        output.attach_log(store.log)
    store.write_json(store.config, {"config_hash": bound.config_hash, **bound.resolved()})
    # experiment trackers (rank 0): the configuration now, each epoch, the metrics at the end
    out = trainer.options.reuse_root or store.root.parents[2]  # <out>/<benchmark>/<method>/
    tracked = TrackedRun(store.root, Path(out), store.run_id, bound.protocol.benchmark)
    names = bound.spec.options.trackers if context.main else ()
    trackers = make_trackers(names, tracked, output.warn)
    try:
        trackers.start(
            {"run_id": store.run_id, "config_hash": bound.config_hash, **bound.resolved()}
        )
        trainer.options.on_record = trackers.epoch
        return _train_evaluate_and_write(bound, trainer, state, output, eval_batch_size, trackers)
    finally:
        trackers.close()


def _train_evaluate_and_write(
    bound: BoundRun,
    trainer: Trainer,
    state: dict[str, Any] | None,
    output: Output,
    eval_batch_size: int | None,
    trackers: TrackerSet,
) -> dict[str, Any]:
    spec, method, context, store = bound.spec, trainer.method, trainer.context, trainer.store
    assert store is not None
    started = time.time()
    git_commit()  # the commit of the code this process loaded, read before training
    output.info(
        f"run [bold]{store.run_id}[/bold]: {spec.method_name} on "
        f"{bound.protocol.benchmark} ({spec.dataset_name}, split "
        f"{spec.dataset_config.split}), backbone {spec.backbone_name}, preset "
        f"{spec.preset or '-'}, seed {spec.options.seed}"
    )
    batch, workers = eval_batch(context, eval_batch_size), trainer.options.workers

    def measure(cache_key: str | None = None):
        return evaluate_protocol(
            method,
            bound.dataset,
            bound.protocol,
            context=context,
            batch_size=batch,
            workers=workers,
            precision=spec.precision,
            cache_key=cache_key,
        )

    tracker = None
    if spec.options.select == "best-epoch":
        tracker = BestEpoch(
            method, store, headline(bound.protocol.metrics), lambda: measure().metrics
        )
        trainer.options.after_epoch = tracker.after_epoch
    reports = trainer.train(resume_from=state)
    selection = (
        tracker.restore()
        if tracker is not None
        else {"rule": "last", "description": DESCRIPTIONS["last"]}
    )
    # a resumed run: the epochs earlier processes trained count too
    train_seconds = time.time() - started + trainer.earlier_seconds
    store.save(
        store.model,
        {
            "format": checkpoint.MODEL_FORMAT,
            "config": bound.resolved(),
            "config_hash": bound.config_hash,
            "num_classes": len(bound.dataset.seen_classes),
            "seen_classes": bound.dataset.seen_classes,
            "state": method.model().state_dict(),
        },
    )
    model_hash = distributed.broadcast_object(
        file_sha256(store.model) if context.main else None, context
    )
    eval_start = time.time()
    evaluation = measure(cache_key=model_hash)
    finished = time.time()
    result = make_result(
        bound,
        evaluation,
        kind="run",
        run_id=store.run_id,
        world_size=context.world,
        started=started,
        finished=finished,
        timing={
            "stages": {r.name: round(r.seconds, 3) for r in reports},
            "training": round(train_seconds, 3),
            "evaluation": round(finished - eval_start, 3),
            "total": round(finished - started + trainer.earlier_seconds, 3),
            "earlier_processes": round(trainer.earlier_seconds, 3),
        },
        images_per_second={r.name: round(r.images_per_second, 1) for r in reports},
        reused_stages=trainer.reused,
        unreadable_training_images=len(trainer.unreadable),
        model_checkpoint=store.model.name,
        model_sha256=model_hash,
        initialisation=describe_init(method.model()),
        model_selection=selection,
        per_query_file=store.per_query.name,
    )
    warn_unreadable(output, evaluation)
    store.write_json(store.per_query, evaluation.per_query)
    store.write_json(store.result, result)
    trackers.finish(result["metrics"])
    output.info(f"result: {store.result}")
    return {**result, "run_dir": str(store.root)}


def warn_unreadable(output: Output, evaluation: Evaluation) -> None:
    """Say how many test images could not be read (they are left out, and counted)."""
    if evaluation.unreadable:
        output.warn(
            f"{len(evaluation.unreadable)} unreadable test images left out of the "
            f"evaluation (e.g. {evaluation.unreadable[0]})"
        )
