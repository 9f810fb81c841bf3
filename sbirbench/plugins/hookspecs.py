"""Hook specifications: everything a plugin can contribute to sbirbench.

A plugin is a module (or object) with functions marked ``@sbirbench.hookimpl`` whose
names match the hooks below. Plugins are found through the ``sbirbench`` entry-point
group; the built-in data sets, backbones and methods are plugins of exactly that kind.

The ``register`` callbacks take lazy ``"module:attr"`` targets, so listing plugins
imports no plugin code (and neither torch nor timm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("sbirbench")


class Register(Protocol):
    """The callback handed to the ``register_*`` hooks."""

    def __call__(
        self,
        name: str,
        target: str | Any,
        *,
        description: str = "",
        aliases: Sequence[str] = (),
    ) -> None:
        """Register ``target`` under ``name``.

        ``target`` is a ``"package.module:Attribute"`` string (imported only when the
        entry is used) or the object itself. ``description`` is the one line shown by
        ``sbirbench list``; ``aliases`` are other names that resolve to this entry.
        """


@hookspec
def register_datasets(register: Register) -> None:
    """Register data sets: classes implementing :class:`sbirbench.interfaces.SBIRDataset`."""


@hookspec
def register_backbones(register: Register) -> None:
    """Register backbones: callables ``cls(config) -> nn.Module`` with a ``Config``
    dataclass, whose modules follow :class:`sbirbench.interfaces.Backbone`."""


@hookspec
def register_methods(register: Register) -> None:
    """Register methods: classes implementing :class:`sbirbench.interfaces.Method`."""


@hookspec
def register_weights(register: Register) -> None:
    """Register pretrained weight sources: :class:`sbirbench.weights.sources.
    WeightSource` objects (a file inside a pip package, its key converter and data config).
    ``--set backbone.pretrained=true`` uses the source registered for the architecture."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``sbirbench`` command line (``@cli.command()``)."""
