"""Typed configuration: frozen dataclasses filled from presets and ``--set key=value``.

Every plugin has a frozen dataclass ``Config``. Values arrive as strings (command line)
or TOML values (presets) and are checked against the field's annotation; an unknown key
is an error naming it and the valid keys.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union

from sbirbench.errors import UserError

#: ``--set`` prefixes that route a key to a config other than the method's.
NAMESPACES = ("backbone", "dataset")


class ConfigError(UserError):
    """A bad configuration key or value."""


def split_overrides(pairs: Iterable[str]) -> dict[str, dict[str, str]]:
    """Parse ``KEY=VALUE`` strings into ``{namespace: {key: value}}``.

    Keys without a known ``namespace.`` prefix belong to the method (namespace ``""``).
    """
    out: dict[str, dict[str, str]] = {"": {}, **{ns: {} for ns in NAMESPACES}}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")  # one line
        namespace, dot, rest = key.partition(".")
        if dot and namespace in NAMESPACES:
            out[namespace][rest] = value.strip()
        else:
            out[""][key] = value.strip()
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_names(cls: type) -> list[str]:
    """The settable fields of a config dataclass."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def build_config(cls: type, values: Mapping[str, Any], *, what: str) -> Any:
    """An instance of dataclass ``cls`` from defaults updated with ``values``.

    ``values`` may hold strings (parsed to the field's type) or already-typed values
    (checked). ``what`` names the config in messages ("method pskd").
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    valid = field_names(cls)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in valid:
            raise ConfigError(f"unknown key '{key}' for {what}; valid keys: {', '.join(valid)}")
        kwargs[key] = coerce(raw, hints[key], key=key, what=what)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid config for {what}: {exc}") from None


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", ""}


def coerce(value: Any, annotation: Any, *, key: str, what: str) -> Any:
    """Convert ``value`` to ``annotation`` (bool, int, float, str, Literal, Optional,
    tuple[...], list[...]) or raise a one-line :class:`ConfigError`."""
    try:
        return _coerce(value, annotation)
    except _Mismatch as exc:
        raise ConfigError(f"{what}: {key}={value!r} is not valid: {exc}") from None


class _Mismatch(Exception):
    pass


def _coerce(value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in _NONE)
        if type(None) in args and is_none:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except _Mismatch as exc:
                errors.append(str(exc))
        raise _Mismatch(" or ".join(errors))
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise _Mismatch("expected one of " + ", ".join(repr(c) for c in args))
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, str) or not isinstance(items, Iterable):
            raise _Mismatch("expected a list")
        items = [i.strip() if isinstance(i, str) else i for i in items]
        items = [i for i in items if i != ""]
        item_type = args[0] if args else Any
        converted = [_coerce(i, item_type) for i in items]
        return tuple(converted) if origin is tuple else converted
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise _Mismatch("expected true or false")
    if annotation is int:
        if isinstance(value, bool):
            raise _Mismatch("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise _Mismatch("expected an integer")
    if annotation is float:
        if isinstance(value, bool):
            raise _Mismatch("expected a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _Mismatch("expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch("expected a string")
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise _Mismatch(f"expected {getattr(annotation, '__name__', annotation)}")


def as_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_hash(payload: Mapping[str, Any]) -> str:
    """A stable hex digest of a JSON-able mapping (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
