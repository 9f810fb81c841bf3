"""Plugin loading: the pluggy PluginManager, entry points, and the three registries.

Every data set, backbone and method, built-in or third-party, comes from a plugin found
through the ``sbirbench`` entry-point group. ``SBIRBENCH_LOAD_PLUGINS`` (a comma list of
entry-point or distribution names; empty means none) limits which ones load.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from sbirbench.errors import UserError, debug_enabled
from sbirbench.plugins import hookspecs
from sbirbench.plugins.registry import Registry

ENTRY_POINT_GROUP = "sbirbench"
ALLOW_ENV = "SBIRBENCH_LOAD_PLUGINS"
KINDS = ("dataset", "backbone", "method", "weights")
#: The hook that fills each kind's registry.
HOOKS = {
    "dataset": "register_datasets",
    "backbone": "register_backbones",
    "method": "register_methods",
    "weights": "register_weights",
}


@dataclass
class PluginInfo:
    """Where a loaded plugin came from, for ``sbirbench plugins``."""

    name: str
    source: str
    distribution: str = ""
    version: str = ""
    module: str = ""


@dataclass
class Plugins:
    """The loaded plugins and the registries they filled."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _registries: dict[str, Registry[Any]] | None = None

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of one kind: "dataset", "backbone" or "method"."""
        if self._registries is None:
            builtin = {n for n, info in self.infos.items() if info.distribution == "sbirbench"}
            self._registries = _build_registries(self.manager, builtin)
        return self._registries[kind]

    @property
    def datasets(self) -> Registry[Any]:
        return self.registry("dataset")

    @property
    def backbones(self) -> Registry[Any]:
        return self.registry("backbone")

    @property
    def methods(self) -> Registry[Any]:
        return self.registry("method")

    def hooks_of(self, name: str) -> list[str]:
        """Names of the hooks a plugin implements."""
        plugin = self.manager.get_plugin(name)
        if plugin is None:
            return []
        callers = self.manager.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def register(self, plugin: object, name: str, source: str = "registered in process") -> None:
        """Register a plugin object (a module or any object with hook implementations)."""
        if self.manager.get_plugin(name) is not None:
            raise UserError(f"a plugin named '{name}' is already registered")
        self.manager.register(plugin, name=name)
        self.manager.check_pending()
        self.infos[name] = PluginInfo(name, source, module=getattr(plugin, "__name__", ""))
        self._registries = None

    def unregister(self, name: str) -> None:
        """Remove a plugin registered by name."""
        self.manager.unregister(name=name)
        self.infos.pop(name, None)
        self._registries = None


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", ""
    return dist.metadata["Name"] or "", dist.version or ""


def load_plugins(debug: bool = False) -> Plugins:
    """Create a PluginManager and load every allowed entry point of the ``sbirbench`` group.

    A plugin that fails to import is skipped with a warning (raised with ``debug``);
    ``check_pending`` then rejects hook implementations that match no hook spec.
    """
    manager = pluggy.PluginManager("sbirbench")
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    allowed = _allow_list()
    seen: set[str] = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist_name, dist_version = _dist_of(ep)
        if allowed is not None and ep.name not in allowed and dist_name not in allowed:
            continue
        seen.update({ep.name, dist_name})
        if manager.get_plugin(ep.name) is not None:
            plugins.warnings.append(
                f"plugin '{ep.name}' from {dist_name or ep.value} has the same name as a plugin "
                "already loaded; skipped"
            )
            continue
        try:
            obj = ep.load()
            manager.register(obj, name=ep.name)
        except Exception as exc:
            if debug:
                raise
            plugins.warnings.append(
                f"plugin '{ep.name}' ({ep.value}) failed to load and was skipped: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        plugins.infos[ep.name] = PluginInfo(
            ep.name, "entry point", dist_name, dist_version, getattr(obj, "__name__", ep.value)
        )
    if allowed:
        for name in sorted(allowed - seen):
            plugins.warnings.append(
                f"{ALLOW_ENV} names '{name}', but no installed plugin has that name"
            )
    _check_pending(plugins, debug)
    return plugins


def _check_pending(plugins: Plugins, debug: bool) -> None:
    """Run ``check_pending``; a plugin with a misspelt hook is dropped with a warning."""
    while True:
        try:
            plugins.manager.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            if debug:
                raise
            name = plugins.manager.get_name(exc.plugin) or str(exc.plugin)
            plugins.warnings.append(f"plugin '{name}' was skipped: {exc}")
            plugins.manager.unregister(exc.plugin)
            plugins.infos.pop(name, None)


def call_each(
    hook_name: str, caller: Any, arguments: dict[str, Any], first: Collection[str] = ()
) -> Iterator[Any]:
    """Call each implementation of a hook on its own (the plugins named in ``first``
    first), yielding the ones that returned. One that raises is skipped with a warning
    naming its plugin, so one broken plugin never stops the others (``--debug`` raises)."""
    from sbirbench.console import output

    for impl in sorted(caller.get_hookimpls(), key=lambda i: i.plugin_name not in first):
        try:
            impl.function(*[arguments[arg] for arg in impl.argnames])
        except Exception as exc:
            if debug_enabled():
                raise
            output().warn(
                f"plugin '{impl.plugin_name}' failed in {hook_name} and was "
                f"skipped: {type(exc).__name__}: {exc}"
            )
            continue
        yield impl


def _build_registries(
    manager: pluggy.PluginManager, builtin: Collection[str] = ()
) -> dict[str, Registry[Any]]:
    """Call every registration hook. A plugin whose hook raises, or whose registration
    breaks the contract or takes a name already taken, is skipped for that kind with a
    warning naming it; the others, built-ins included, still load (``--debug`` raises)."""
    from sbirbench.console import output
    from sbirbench.plugins.contract import CHECKS

    registries: dict[str, Registry[Any]] = {kind: Registry(kind, CHECKS[kind]) for kind in KINDS}
    for kind in KINDS:
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        caller = getattr(manager.hook, HOOKS[kind])
        # Each implementation is called on its own so that every entry knows its origin;
        # the built-ins first, so that a plugin taking a built-in name is the one skipped.
        for impl in call_each(HOOKS[kind], caller, {"register": _recorder(calls)}, builtin):
            try:  # all of a plugin's entries, or none
                for args, kwargs in calls:
                    registries[kind].add(*args, origin=impl.plugin_name, **kwargs)
            except UserError as exc:
                if debug_enabled():
                    raise
                registries[kind].remove_origin(impl.plugin_name)
                output().warn(f"{exc}; plugin '{impl.plugin_name}' was skipped")
            finally:
                calls.clear()
    return registries


def _recorder(calls: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> Callable[..., None]:
    def register(name: str, target: Any, *, description: str = "", aliases: Any = ()) -> None:
        calls.append(((name, target), {"description": description, "aliases": aliases}))

    return register


_current: Plugins | None = None


def get_plugins(debug: bool = False) -> Plugins:
    """The process-wide plugin set, loaded on first use."""
    global _current
    if _current is None:
        _current = load_plugins(debug=debug)
        for message in _current.warnings:
            print(f"warning: {message}", file=sys.stderr)
    return _current


def reset_plugins() -> None:
    """Forget the loaded plugins (the next :func:`get_plugins` loads them again)."""
    global _current
    _current = None
