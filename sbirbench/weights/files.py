"""Reading weight files.

Local files are read with ``torch.load(weights_only=True)`` (no arbitrary unpickling) or
safetensors. Wrapped checkpoints are unwrapped: DINO's ``teacher``/``student`` entries,
``model``/``state_dict``, and ``module.``/``backbone.``/``_orig_mod.`` key prefixes.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch

from sbirbench.errors import UserError

#: Preferred entries of a wrapped checkpoint, in order (DINO keeps the teacher for eval).
WRAPPER_KEYS = ("teacher", "student", "model", "state_dict", "module", "network")
PREFIXES = ("module.", "_orig_mod.", "backbone.")


def read_state_dict(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped, with training prefixes removed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        try:
            # DINO training checkpoints carry their argparse.Namespace; that one plain
            # container is allowed, every other non-tensor object is refused.
            with torch.serialization.safe_globals([argparse.Namespace]):
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UserError(
                f"{path} holds pickled objects that weights-only loading refuses "
                f"({str(exc).splitlines()[0][:120]}); re-save it as a plain state dict"
            ) from None
        except (RuntimeError, EOFError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"cannot read weights file {path}: {reason}") from None
    state = _unwrap(state, key, path)
    return _strip_prefixes(state)


def _unwrap(state: Any, key: str | None, path: Path) -> dict[str, torch.Tensor]:
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            keys = ", ".join(list(state)[:8]) if isinstance(state, dict) else type(state).__name__
            raise UserError(f"{path} has no entry '{key}' (top-level keys: {keys})")
        state = state[key]
    while isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for candidate in WRAPPER_KEYS:
            if isinstance(state.get(candidate), dict):
                state = state[candidate]
                break
        else:
            keys = ", ".join(list(state)[:8])
            raise UserError(
                f"{path} holds no state dict (top-level keys: {keys}); "
                "name the entry with weights_key=..."
            )
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``module.``, ``_orig_mod.``, and ``backbone.``, which DINO,
    TVT and PSKD put before the backbone's keys). Other keys (heads) stay as they are: the
    converter uses or drops them, and says so."""
    for prefix in PREFIXES:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
