"""Helpers for testing plugins: register a plugin for the duration of a test, and a tiny
in-memory data set.

    from sbirbench.testing import registered_plugin

    class MyPlugin:
        @sbirbench.hookimpl
        def register_methods(self, register):
            register("mine", MyMethod, description="...")

    with registered_plugin(MyPlugin(), "mine"):
        ...  # `mine` is now a method, as if installed
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image

from sbirbench.interfaces import DatasetConfig, Item, ItemRef, Modality, SBIRDataset, Subset
from sbirbench.plugins.manager import Plugins, get_plugins


@contextlib.contextmanager
def registered_plugin(plugin: object, name: str) -> Iterator[Plugins]:
    """Register ``plugin`` in the process-wide plugin set; unregister it afterwards."""
    plugins = get_plugins()
    plugins.register(plugin, name)
    try:
        yield plugins
    finally:
        plugins.unregister(name)


@dataclass(frozen=True)
class ToyConfig(DatasetConfig):
    """A few random colour-blob classes; sizes small enough for unit tests."""

    seed: int = 0
    image_size: int = 32
    classes: int = 6
    unseen: int = 2
    per_class: int = 8


class ToyDataset(SBIRDataset):
    """Random images per class (a class is a mean colour), held in memory."""

    name: ClassVar[str] = "toy"
    Config = ToyConfig
    config: ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        rng = np.random.default_rng(config.seed)
        means = rng.integers(0, 256, size=(config.classes, 3))
        count = config.classes * config.per_class
        self.labels = np.repeat(np.arange(config.classes), config.per_class)
        noise = rng.normal(0, 40, size=(2, count, config.image_size, config.image_size, 3))
        images = np.clip(means[self.labels][None, :, None, None, :] + noise, 0, 255)
        self.images = {"sketch": images[0].astype(np.uint8), "photo": images[1].astype(np.uint8)}

    @property
    def seen_classes(self) -> list[str]:
        return [f"class{i}" for i in range(self.config.classes - self.config.unseen)]

    @property
    def unseen_classes(self) -> list[str]:
        first = self.config.classes - self.config.unseen
        return [f"class{i}" for i in range(first, self.config.classes)]

    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        first_unseen = self.config.classes - self.config.unseen
        if subset == "train":
            return [(i, int(c)) for i, c in enumerate(self.labels) if c < first_unseen]
        return [(i, int(c) - first_unseen) for i, c in enumerate(self.labels) if c >= first_unseen]

    def open(self, ref: ItemRef, modality: Modality) -> Image.Image:
        return Image.fromarray(self.images[modality][int(ref)])
