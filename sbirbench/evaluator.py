"""Evaluating a saved model (``sbirbench eval``), on one process or under torchrun."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sbirbench import atomic, checkpoint, distributed
from sbirbench.console import set_output
from sbirbench.errors import UserError
from sbirbench.evaluate import evaluate
from sbirbench.results import SCHEMA, devices, git_commit, package_versions
from sbirbench.runner import file_hash, seed_everything
from sbirbench.runspec import RunOptions, from_checkpoint


def evaluate_checkpoint(path: Path, options: RunOptions, *, output: Path | None = None,
                        batch_size: int | None = None, workers: int = 0, use_cache: bool = True,
                        log_mode: str = "rich") -> dict[str, Any]:
    """Rebuild the method saved in ``path``, evaluate it, write and return the result."""
    saved = checkpoint.load(path)
    if saved.get("format") != checkpoint.MODEL_FORMAT:
        raise UserError(f"{path} is not an sbirbench model checkpoint (expected a run's "
                        "checkpoint.pt)")
    spec = from_checkpoint(saved["config"], options)
    context = distributed.setup(spec.device)
    out = set_output(log_mode)
    succeeded = False
    try:
        started = time.time()
        seed_everything(spec.options.seed)
        dataset = spec.build_dataset()
        warning = spec.bind_data(dataset)
        if warning:
            out.warn(warning)
        method = spec.build_method(saved["num_classes"], pretrained=False)
        method.model().load_state_dict(saved["state"])
        method.model().to(context.device)
        out.info(f"evaluating {path} ({spec.method_name}) on {spec.benchmark}")
        scores = evaluate(method, dataset, context=context, metrics=spec.metrics, ap=spec.ap,
                      ties=spec.options.ties,
                          hash_bits=spec.options.hash_bits, precision=spec.precision,
                          batch_size=batch_size or (256 if context.device.type == "cuda" else 64),
                          workers=workers, cache_key=file_hash(path) if use_cache else None)
        per_query = scores.pop("per_query")
        result = {
            "schema": SCHEMA, "run_id": saved["config"].get("run_id") or path.parent.name,
            "kind": "evaluation", "checkpoint": str(path), "method": spec.method_name,
            "dataset": spec.dataset_name, "split": spec.dataset_config.split,
            "benchmark": spec.benchmark, "benchmark_version": spec.benchmark_version,
            "backbone": spec.backbone_name, "preset": spec.preset,
            "overrides": saved["config"].get("overrides", []), "config": saved["config"],
            "config_hash": saved["config_hash"], "seed": saved["config"].get("seed", 0),
            **scores, "ap": spec.ap, "world_size": context.world,
            "devices": devices(spec.device), "precision": spec.precision,
            "versions": package_versions(), "git_commit": git_commit(),
            "dataset_info": dataset.describe(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "wall_time": {"evaluation": round(time.time() - started, 3)},
        }
        if context.main:
            target = output or path.parent / f"eval-{spec.benchmark}.json"
            side = target.with_name(target.stem + ".per_query.json")
            atomic.write_json(side, per_query)
            result["per_query_file"] = side.name
            atomic.write_json(target, result)
            out.info(f"result: {target}")
        succeeded = True
        return result
    finally:
        distributed.teardown(context, succeeded=succeeded)
