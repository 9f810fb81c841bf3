"""Image transforms, built from torchvision's v2 transforms (nothing hand-written).

``dino``: the TVT/PSKD training augmentation (RandomResizedCrop scale 0.14-1, flip,
colour jitter p 0.8, grayscale p 0.2, Gaussian blur p 0.1, solarisation p 0.2);
``basic``: crop (scale 0.5-1) and flip; ``none``: resize only. Evaluation: resize to
``size x size`` (no crop) with the spec's interpolation and antialiasing (the TVT/PSKD
release: bilinear, no antialiasing). All end with the spec's mean/std normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from sbirbench.interfaces import InputSpec


def _finish(mean: Sequence[float], std: Sequence[float]) -> list:
    return [T.ToDtype(torch.float32, scale=True), T.Normalize(list(mean), list(std))]


def train_transform(kind: str, spec: InputSpec) -> Callable:
    """The training transform of one augmentation recipe (PIL image in, tensor out),
    resizing with the spec's interpolation (antialiased)."""
    size, mean, std = spec.size, spec.mean, spec.std
    resize = InterpolationMode(spec.interpolation)
    if kind == "dino":
        blur = max(3, (size // 10) | 1)  # an odd kernel about a tenth of the image
        steps = [
            T.RandomResizedCrop(size, scale=(0.14, 1.0), interpolation=resize, antialias=True),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([T.GaussianBlur(blur, sigma=(0.1, 2.0))], p=0.1),
            T.RandomSolarize(threshold=128, p=0.2),
        ]
    elif kind == "basic":
        steps = [
            T.RandomResizedCrop(size, scale=(0.5, 1.0), interpolation=resize, antialias=True),
            T.RandomHorizontalFlip(),
        ]
    elif kind == "none":
        steps = [T.Resize((size, size), interpolation=resize, antialias=True)]
    else:
        raise ValueError(f"unknown augmentation '{kind}'")
    return T.Compose([T.ToImage(), *steps, *_finish(mean, std)])


def eval_transform(spec: InputSpec) -> Callable:
    """Resize to ``size x size`` (the TVT/PSKD evaluation transform), then normalise."""
    return T.Compose(
        [
            T.ToImage(),
            T.Resize(
                (spec.size, spec.size),
                interpolation=InterpolationMode(spec.interpolation),
                antialias=spec.antialias,
            ),
            *_finish(spec.mean, spec.std),
        ]
    )


def describe(transform: Callable) -> str:
    """A stable text form of a transform (part of the feature-cache key)."""
    return repr(transform).replace("\n", " ")
