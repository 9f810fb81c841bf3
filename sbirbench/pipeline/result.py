"""Step 7 of a run: :func:`make_result`, the one place ``result.json`` is built.

A result records everything a reviewer needs to know how a number was measured: the
protocol (benchmark and version, data set, split, metrics, AP and tie conventions), the
inputs (size, normalisation, resize rule), where every weight came from (with file
hashes), the seed, the resolved configuration and its hash, the code (package versions,
git commit), the hardware, precision and world size, and the wall time. Its form is the
versioned JSON Schema ``docs/result.schema.json`` (checked in the tests).
"""

from __future__ import annotations

import functools
import platform
import subprocess
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from torch import nn

from sbirbench.results.result import SCHEMA

from .bind import BoundRun
from .evaluation import Evaluation


def make_result(
    bound: BoundRun,
    evaluation: Evaluation,
    *,
    kind: str,
    run_id: str,
    world_size: int,
    started: float,
    finished: float,
    timing: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    config_hash: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The result of a ``kind`` ("run" or "evaluation") of ``bound``. ``config`` and
    ``config_hash`` default to the bound run's own (an evaluation of a saved model passes
    the model's); ``fields`` are the kind's own (training times, model file, ...)."""
    spec, protocol = bound.spec, bound.protocol
    return {
        "schema": SCHEMA,
        "kind": kind,
        "run_id": run_id,
        "method": spec.method_name,
        "dataset": spec.dataset_name,
        "split": spec.dataset_config.split,
        "benchmark": protocol.benchmark,
        "benchmark_version": protocol.version,
        "protocol": protocol.kind,
        "backbone": spec.backbone_name,
        "preset": spec.preset,
        "overrides": list(spec.options.overrides),
        "config": dict(config if config is not None else bound.resolved()),
        "config_hash": config_hash or bound.config_hash,
        "seed": spec.options.seed,
        **evaluation.fields(),
        "ap": protocol.ap,
        "world_size": world_size,
        "devices": devices(spec.device),
        "precision": spec.precision,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "dataset_info": bound.dataset.describe(),
        "started": _stamp(started),
        "finished": _stamp(finished),
        "wall_time": dict(timing),
        **fields,
    }


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(seconds))


def describe_init(model: nn.Module) -> dict[str, Any]:
    """How each part of the model started: every submodule with ``describe_init()``
    (backbones: weight source, file hash, data config; heads: their initialisation)."""
    return {
        name or "model": module.describe_init()
        for name, module in model.named_modules()
        if callable(getattr(module, "describe_init", None))
    }


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sbirbench", "torch", "timm", "numpy", "torchvision"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.cache
def git_commit() -> str | None:
    """The commit of the sbirbench source tree (with ``+dirty``), when it is a checkout.
    Read once per process, when its first run starts (``execute`` calls it then): the
    code a process runs is what it loaded, not what the tree holds when the run ends."""
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.strip() else "")


def devices(device: str) -> list[str]:
    """The hardware a run used: GPU names, or the CPU and its thread count."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return [f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"]
