"""Where sbirbench keeps caches and finds its shipped files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The file suffixes read as images (data-set folders, photo folders to search).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def cache_dir(*parts: str) -> Path:
    """The user cache folder (``$SBIRBENCH_CACHE``, else ``$XDG_CACHE_HOME/sbirbench``,
    else ``~/.cache/sbirbench``), joined with ``parts`` and created."""
    root = os.environ.get("SBIRBENCH_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "sbirbench"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_file(name: str) -> Path | None:
    """A top-level file of the source tree (editable installs) or of ``share/sbirbench``
    (wheel installs), or ``None`` when neither exists."""
    here = Path(__file__).resolve().parents[2] / name
    if here.is_file():
        return here
    shared = Path(sys.prefix) / "share" / "sbirbench" / name
    if shared.is_file():
        return shared
    return None


def relative_to_root(ref: object, root: str) -> str:
    """A data-set item's path relative to the data set's root, with ``/`` separators (how
    per-query records and GZS hold-out listings name images, so moving the data keeps
    them)."""
    return str(ref).removeprefix(root).lstrip("/\\").replace("\\", "/")
