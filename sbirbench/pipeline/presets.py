"""Method presets: the tables of the TOML file beside a method's module."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any

from sbirbench.console import output
from sbirbench.errors import UserError

#: Preset keys that are not method config fields.
META = ("benchmarks", "description", "backbone_config", "dataset_config")
_warned: set[Path] = set()


def presets_file(method_cls: type) -> Path:
    """Where a method's presets live: beside its module, same name, ``.toml``."""
    return Path(inspect.getfile(method_cls)).with_suffix(".toml")


def load_presets(method_cls: type, method: str, origin: str = "") -> dict[str, dict[str, Any]]:
    """The presets of a method; without a presets file, none (and one warning naming the
    file looked for)."""
    path = presets_file(method_cls)
    if not path.is_file():
        if path not in _warned:
            _warned.add(path)
            by = f" (plugin {origin})" if origin else ""
            output().warn(
                f"method {method}{by} has no presets file {path}; using its Config defaults"
            )
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: {exc}") from None
    return {name: table for name, table in data.items() if isinstance(table, dict)}


def choose_preset(
    presets: dict[str, dict[str, Any]], asked: str | None, benchmark: str, method: str
) -> str | None:
    """The asked-for preset, else the one listing this benchmark, else none."""
    if asked is not None:
        if asked not in presets:
            available = ", ".join(presets) or "none"
            raise UserError(f"method {method} has no preset '{asked}'; available: {available}")
        return asked
    for name, table in presets.items():
        if benchmark in table.get("benchmarks", ()):
            return name
    return None
