"""Class names: one normaliser for every spelling variant, and the shipped class lists."""

from __future__ import annotations

from importlib import resources

from sbirbench.protocol.classnames import normalize

__all__ = ["normalize", "read_names", "shipped_list"]


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
