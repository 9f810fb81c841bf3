"""sbirbench: a benchmark harness for zero-shot sketch-based image retrieval.

Importing this package is cheap: it pulls in neither torch nor timm.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

#: Marker for hook implementations in plugins: ``@sbirbench.hookimpl``.
hookimpl = pluggy.HookimplMarker("sbirbench")

try:
    __version__ = version("sbirbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "hookimpl"]
