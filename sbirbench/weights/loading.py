"""Strict loading of converted weights: every tensor of the model is set, every tensor of
the file is used or deliberately dropped (with a reason), or the load is an error that
lists the keys. A partial load is never silent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sbirbench.console import output
from sbirbench.errors import UserError

#: Keys shown per list in an error message (the counts are always complete).
SHOWN = 6


@dataclass
class Converted:
    """A checkpoint in the model's own key names, and what the converter left out on
    purpose (key -> why)."""

    state: dict[str, torch.Tensor]
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadReport:
    """What loading a checkpoint into a module did (recorded in results)."""

    source: str
    loaded: int
    dropped: dict[str, str] = field(default_factory=dict)
    sha256: str | None = None
    data_config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        text = f"loaded all {self.loaded} tensors of the model from {self.source}"
        if self.dropped:
            reasons = sorted(set(self.dropped.values()))
            text += f"; dropped {len(self.dropped)} on purpose ({'; '.join(reasons)})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "tensors_loaded": self.loaded,
            "dropped": dict(self.dropped),
            "data_config": dict(self.data_config),
        }


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > SHOWN else ''})"


def load_strict(
    module: nn.Module, converted: Converted, source: str, ignore: tuple[str, ...] = ()
) -> LoadReport:
    """Load ``converted`` into ``module``: all or nothing.

    ``ignore`` are key prefixes the user chose to leave out (``weights_ignore``); they are
    recorded as dropped. Raises a one-line :class:`UserError` naming the missing,
    unexpected and wrongly shaped keys.
    """
    own = module.state_dict()
    state = dict(converted.state)
    dropped = dict(converted.dropped)
    for key in [k for k in state if ignore and k.startswith(ignore)]:
        del state[key]
        dropped[key] = "weights_ignore"
    shapes = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if shapes or missing or unexpected:
        problems = []
        if shapes:
            k = shapes[0]
            problems.append(
                f"{len(shapes)} differ in shape ('{k}' is {tuple(state[k].shape)} in "
                f"the file, {tuple(own[k].shape)} in the model)"
            )
        if missing:
            problems.append(f"missing from the file: {_listed(missing)}")
        if unexpected:
            problems.append(f"unexpected in the file: {_listed(unexpected)}")
        hint = (
            ""
            if not unexpected
            else "; leave keys out on purpose with --set backbone.weights_ignore=PREFIX,..."
        )
        raise UserError(
            f"{source} does not fit {type(module).__name__}: {'; '.join(problems)}{hint}"
        )
    module.load_state_dict(state, strict=True)
    report = LoadReport(source, len(state), dropped)
    output().info(f"[dim]{report.summary()}[/dim]")
    return report


def describe_weights(report: LoadReport | None) -> dict[str, Any]:
    """A backbone's ``describe_init()``: where its weights came from."""
    return report.as_dict() if report is not None else {"source": "random initialisation"}


def rename_prefixes(
    state: Mapping[str, torch.Tensor], rules: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    """Keys starting with a rule's prefix get the rule's replacement (first rule wins)."""
    out = {}
    for key, value in state.items():
        for old, new in rules.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out
