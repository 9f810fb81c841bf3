"""Evaluate a saved model: rebuild the method from a run's ``checkpoint.pt``, evaluate
it on the same (or another) protocol, and write ``eval-<benchmark>.json`` beside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sbirbench.console import set_output
from sbirbench.errors import UserError
from sbirbench.runtime import distributed
from sbirbench.weights.files import file_sha256

from .bind import bind
from .execute import eval_batch, seed_everything, warn_unreadable
from .fine_grained import evaluate_protocol
from .options import RunOptions
from .resolve_saved import load_saved, rebuild, resolve_saved
from .result import make_result
from .store import RunStore


def evaluate_saved(
    path: Path,
    options: RunOptions,
    *,
    output_file: Path | None = None,
    batch_size: int | None = None,
    workers: int = 0,
    use_cache: bool = True,
    log_mode: str = "rich",
) -> dict[str, Any]:
    """Rebuild the method saved in ``path`` (a run's ``checkpoint.pt``), evaluate it, and
    write ``eval-<benchmark>.json`` beside it (or ``output_file``)."""
    saved = load_saved(path)
    spec = resolve_saved(saved["config"], options)
    context = distributed.setup(spec.device)
    out = set_output(log_mode)
    succeeded = False
    try:
        started = time.time()
        seed_everything(spec.options.seed)
        bound = bind(spec)
        if bound.warning:
            out.warn(bound.warning)
        gzs = bound.protocol.gzs
        if gzs is not None and gzs.holdout and bound.fingerprint != saved["config"].get("data"):
            raise UserError(
                f"{bound.protocol.benchmark} holds out seen images this model may have been "
                "trained on (it was trained on other data or another hold-out); train it "
                f"with --benchmark {spec.options.benchmark or bound.protocol.benchmark}"
            )
        method = rebuild(saved, spec)
        method.model().to(context.device)
        out.info(f"evaluating {path} ({spec.method_name}) on {bound.protocol.benchmark}")
        evaluation = evaluate_protocol(
            method,
            bound.dataset,
            bound.protocol,
            context=context,
            batch_size=eval_batch(context, batch_size),
            workers=workers,
            precision=spec.precision,
            cache_key=file_sha256(path) if use_cache else None,
        )
        warn_unreadable(out, evaluation)
        target = output_file or path.parent / f"eval-{bound.protocol.benchmark}.json"
        side = target.with_name(target.stem + ".per_query.json")
        result = make_result(
            bound,
            evaluation,
            kind="evaluation",
            run_id=saved["config"].get("run_id") or path.parent.name,
            world_size=context.world,
            started=started,
            finished=time.time(),
            timing={"evaluation": round(time.time() - started, 3)},
            config=saved["config"],
            config_hash=saved["config_hash"],
            checkpoint=str(path),
            per_query_file=side.name,
        )
        result["overrides"] = saved["config"].get("overrides", [])
        result["seed"] = saved["config"].get("seed", 0)
        store = RunStore(target.parent, writer=context.main)
        store.write_json(side, evaluation.per_query)
        store.write_json(target, result)
        out.info(f"result: {target}")
        succeeded = True
        return result
    finally:
        distributed.teardown(context, succeeded=succeeded)
