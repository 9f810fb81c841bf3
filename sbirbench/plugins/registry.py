"""A typed registry of named plugin entries with lazy targets.

Targets may be ``"package.module:Attribute"`` strings, imported on first use, so that
listing what exists costs no heavy import.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sbirbench.errors import UserError

T = TypeVar("T")


class RegistryError(UserError):
    """A registration conflict or a lookup of an unknown name."""


@dataclass
class Entry(Generic[T]):
    """One registered plugin object."""

    name: str
    target: str | T
    description: str
    origin: str
    aliases: tuple[str, ...] = ()
    _loaded: T | None = field(default=None, repr=False)

    @property
    def target_path(self) -> str:
        """The ``module:attr`` path of the target, for messages."""
        if isinstance(self.target, str):
            return self.target
        module = getattr(self.target, "__module__", "?")
        return f"{module}:{getattr(self.target, '__qualname__', '?')}"

    check: Callable[[Any], str | None] | None = field(default=None, repr=False)

    def load(self) -> T:
        """Import (once), check against the plugin contract, and return the target."""
        if self._loaded is None:
            if isinstance(self.target, str):
                loaded = _import_target(self.target, self.origin)
                self._verify(loaded)
                self._loaded = loaded
            else:
                self._loaded = self.target
        return self._loaded

    def _verify(self, target: Any) -> None:
        problem = self.check(target) if self.check is not None else None
        if problem:
            raise RegistryError(
                f"plugin '{self.origin}' registered {self.name} "
                f"({self.target_path}), which {problem}"
            )


def _import_target(path: str, origin: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(
            f"plugin '{origin}' registered '{path}', which is not of the form 'module:attribute'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise RegistryError(
            f"plugin '{origin}' registered '{path}', which failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistryError(
                f"plugin '{origin}' registered '{path}', but '{module_name}' has no '{attr}'"
            ) from None
    return obj


class Registry(Generic[T]):
    """Named entries of one kind ("method", "dataset", "backbone")."""

    def __init__(self, kind: str, check: Callable[[Any], str | None] | None = None) -> None:
        self.kind = kind
        self.check = check
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def add(
        self,
        name: str,
        target: str | T,
        *,
        origin: str,
        description: str = "",
        aliases: Sequence[str] = (),
    ) -> None:
        """Register ``target``; a name or alias taken twice is an error naming both origins."""
        if isinstance(aliases, str):
            aliases = (aliases,)
        for key in (name, *aliases):
            owner = self._owner(key)
            if owner is not None:
                raise RegistryError(
                    f"{self.kind} '{key}' is registered twice: by plugin '{owner.origin}' "
                    f"({owner.target_path}) and by plugin '{origin}' "
                    f"({Entry(name, target, '', origin).target_path})"
                )
        entry = Entry(
            name,
            target,
            description.strip().splitlines()[0] if description else "",
            origin,
            tuple(aliases),
            check=self.check,
        )
        if not isinstance(target, str):  # an object: checked now; a path: when loaded
            entry._verify(target)
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name

    def remove_origin(self, origin: str) -> None:
        """Drop every entry (and its aliases) that plugin ``origin`` registered."""
        for name in [n for n, e in self._entries.items() if e.origin == origin]:
            del self._entries[name]
        self._aliases = {a: n for a, n in self._aliases.items() if n in self._entries}

    def _owner(self, key: str) -> Entry[T] | None:
        if key in self._entries:
            return self._entries[key]
        if key in self._aliases:
            return self._entries[self._aliases[key]]
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._owner(name) is not None

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Registered names, sorted (aliases not included)."""
        return sorted(self._entries)

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name`` or an alias; unknown names get a did-you-mean message."""
        entry = self._owner(name)
        if entry is None:
            raise RegistryError(self._unknown_message(name))
        return entry

    def load(self, name: str) -> T:
        """Import and return the target registered under ``name``."""
        return self.get(name).load()

    def _unknown_message(self, name: str) -> str:
        candidates = list(self._entries) + list(self._aliases)
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        message = f"unknown {self.kind} '{name}'"
        if close:
            message += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        elif self._entries:
            message += f"; available: {', '.join(self.names())}"
        else:
            message += f"; no {self.kind} plugins are loaded (see `sbirbench plugins`)"
        return message
