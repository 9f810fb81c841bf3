"""The registered weight sources (:mod:`sbirbench.weights.sources`), looked up in the
plugin registry ``weights``: the weights package itself never needs the plugin manager."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbirbench.plugins.manager import get_plugins

if TYPE_CHECKING:
    from sbirbench.weights.sources import WeightSource


def registered() -> list[WeightSource]:
    """Every registered pip source (built-in ones included)."""
    return [entry.load() for entry in get_plugins().registry("weights")]


def source_for(model: str, name: str | None = None) -> WeightSource | None:
    """The named source, or the registered source of ``model``'s architecture (None: use
    timm's own weights)."""
    registry = get_plugins().registry("weights")
    if name is not None:
        return registry.load(name)
    for entry in registry:
        source = entry.load()
        if source.architecture == model:
            return source
    return None
