"""sbirbench: a benchmark harness for zero-shot sketch-based image retrieval.

    import sbirbench
    result = sbirbench.run("ce", dataset="synthetic", epochs=1)
    print(result.metrics)

Importing this package is cheap: it pulls in neither torch nor timm (a run does), and the
API (:mod:`sbirbench.api`) loads when one of its names is first used, so plugins that
import ``sbirbench.hookimpl`` load nothing else.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pluggy

#: Marker for hook implementations in plugins: ``@sbirbench.hookimpl``.
hookimpl = pluggy.HookimplMarker("sbirbench")

try:
    __version__ = version("sbirbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_LAZY = {
    "run": "sbirbench.api",
    "evaluate": "sbirbench.api",
    "load_results": "sbirbench.api",
    "Result": "sbirbench.results.result",
}

__all__ = ["Result", "__version__", "evaluate", "hookimpl", "load_results", "run"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sbirbench' has no attribute {name!r}")
