"""Class names: one normaliser for every spelling variant, and the shipped class lists."""

from __future__ import annotations

import re
from importlib import resources

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize(name: str) -> str:
    """The canonical form of a class name: lower case, and runs of spaces, ``_`` and
    ``-`` as one ``_`` (``hot-air_balloon``, ``hot air balloon`` and ``hot_air_balloon``
    are one class; ``car (sedan)`` and ``car_(sedan)`` too)."""
    return _SEPARATORS.sub("_", name.strip().lower()).strip("_")


def read_names(text: str) -> list[str]:
    """Names from a one-per-line text (blank lines and ``#`` comments skipped)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def shipped_list(filename: str) -> list[str]:
    """A class list from ``datasets/splits`` (installed as package data)."""
    return read_names(resources.files("sbirbench.datasets.splits").joinpath(filename).read_text())
