"""Training-state checkpoints: written atomically, read back with ``weights_only=True``.

Everything stored is a tensor or a plain container (numbers, strings, lists, dicts), so
sbirbench's own files load without unpickling arbitrary objects.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from sbirbench.errors import UserError
from sbirbench.interfaces import Method, Stage
from sbirbench.runtime import atomic

MODEL_FORMAT = "sbirbench-model/1"


def method_modules(method: Method, stages: list[Stage]) -> dict[str, nn.Module]:
    """Every module a method owns, by name: stage modules, frozen ones, and its model."""
    modules: dict[str, nn.Module] = {}
    for stage in stages:
        for name, module in {**stage.modules, **stage.frozen}.items():
            if name in modules and modules[name] is not module:
                raise UserError(f"method uses the module name '{name}' for two different modules")
            modules[name] = module
    model = method.model()
    if all(model is not m for m in modules.values()):
        modules["model"] = model
    return modules


def rng_state() -> dict[str, Any]:
    """Every random generator's state, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True)
    )
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict."""
    atomic.torch_save(path, payload)


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save` (weights only)."""
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None


def module_states(modules: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {name: module.state_dict() for name, module in modules.items()}


def load_module_states(modules: dict[str, nn.Module], states: dict[str, Any]) -> None:
    for name, module in modules.items():
        if name in states:
            module.load_state_dict(states[name])
