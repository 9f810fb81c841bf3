"""One normaliser for every spelling of a class name (used by the data-set plugins and by
the cross-data-set protocol, which matches classes between data sets)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize(name: str) -> str:
    """The canonical form of a class name: lower case, and runs of spaces, ``_`` and
    ``-`` as one ``_`` (``hot-air_balloon``, ``hot air balloon`` and ``hot_air_balloon``
    are one class; ``car (sedan)`` and ``car_(sedan)`` too)."""
    return _SEPARATORS.sub("_", name.strip().lower()).strip("_")
