"""The plugin contract, checked where an entry is registered (an object target) or first
loaded (a ``"module:attr"`` target, imported only when used): a wrong base class or a
missing attribute is one line naming the plugin, not a failure deep inside a run."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from sbirbench.interfaces import DatasetConfig, Method, SBIRDataset


def _config(target: Any) -> str | None:
    config = getattr(target, "Config", None)
    if config is None:
        return "has no Config (a frozen dataclass of its options)"
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        return f"has a Config that is not a dataclass ({config!r})"
    return None


def check_method(target: Any) -> str | None:
    if not (isinstance(target, type) and issubclass(target, Method)):
        return f"is not a subclass of sbirbench.interfaces.Method ({target!r})"
    if inspect.isabstract(target):
        missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ())))
        return f"does not implement {missing}"
    return _config(target)


def check_dataset(target: Any) -> str | None:
    if not (isinstance(target, type) and issubclass(target, SBIRDataset)):
        return f"is not a subclass of sbirbench.interfaces.SBIRDataset ({target!r})"
    if inspect.isabstract(target):
        missing = ", ".join(sorted(getattr(target, "__abstractmethods__", ())))
        return f"does not implement {missing}"
    if not isinstance(getattr(target, "name", None), str):
        return "has no 'name' (the data set's name, a str class attribute)"
    if not getattr(target, "splits", None):
        return "has no 'splits' (the allowed --split values; the first is the default)"
    problem = _config(target)
    if problem is None and not issubclass(target.Config, DatasetConfig):
        return "has a Config that does not subclass sbirbench.interfaces.DatasetConfig"
    return problem


def check_backbone(target: Any) -> str | None:
    if not callable(target):
        return f"is not callable (a backbone is a factory: Config -> module), got {target!r}"
    return _config(target)


def check_weights(target: Any) -> str | None:
    from sbirbench.weights.sources import WeightSource

    if not isinstance(target, WeightSource):
        return f"is not a sbirbench.weights.sources.WeightSource ({target!r})"
    return None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "method": check_method,
    "dataset": check_dataset,
    "backbone": check_backbone,
    "weights": check_weights,
}
