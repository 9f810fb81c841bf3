"""``synthetic``: the embedded data set, generated from a seed with Pillow (no download).

20 shape classes (15 seen, 5 unseen), photos and sketches at 64 px by default. The
arrays are generated once per parameter set and cached (atomically) in the user cache
folder, or under ``--data-root`` when one is given.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from sbirbench.config import config_hash
from sbirbench.errors import UserError
from sbirbench.interfaces import DatasetConfig, Item, ItemRef, Modality, SBIRDataset, Subset
from sbirbench.runtime.paths import cache_dir

from .synthetic_render import CLASSES, GENERATOR_VERSION, UNSEEN, render_photo, render_sketch

_MODALITY_ID = {"sketch": 0, "photo": 1}


@dataclass(frozen=True)
class SyntheticConfig(DatasetConfig):
    """Generation parameters; each set is generated once and cached."""

    seed: int = 0
    image_size: int = 64
    sketches_per_class: int = 60
    photos_per_class: int = 60

    def __post_init__(self) -> None:
        if self.image_size < 16:
            raise ValueError(f"image_size={self.image_size}: must be at least 16 pixels")
        for name in ("sketches_per_class", "photos_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be at least 1")


def generate(config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Render every image of the data set (deterministic in ``config``)."""
    out: dict[str, np.ndarray] = {}
    for modality, count, render in (
        ("sketch", config.sketches_per_class, render_sketch),
        ("photo", config.photos_per_class, render_photo),
    ):
        images, labels = [], []
        for label, name in enumerate(CLASSES):
            for index in range(count):
                rng = np.random.default_rng([config.seed, _MODALITY_ID[modality], label, index])
                images.append(render(name, rng, config.image_size))
                labels.append(label)
        size = config.image_size
        shape = (0, size, size) if modality == "sketch" else (0, size, size, 3)
        out[modality] = np.stack(images) if images else np.zeros(shape, np.uint8)
        out[f"{modality}_labels"] = np.asarray(labels, dtype=np.int64)
    return out


def _params(config: SyntheticConfig) -> dict[str, Any]:
    keep = ("seed", "image_size", "sketches_per_class", "photos_per_class")
    return {"generator": GENERATOR_VERSION, **{k: asdict(config)[k] for k in keep}}


def cached_arrays(config: SyntheticConfig) -> tuple[Path, dict[str, np.ndarray]]:
    """The arrays for ``config``, generated on first use and memory-mapped afterwards."""
    root = Path(config.data_root) if config.data_root else cache_dir("synthetic")
    params = _params(config)
    folder = root / f"synthetic-{config_hash(params)[:16]}"
    if not (folder / "params.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root))
        try:
            for key, array in generate(config).items():
                np.save(tmp / f"{key}.npy", array)
            (tmp / "params.json").write_text(json.dumps(params, indent=2))
            try:
                os.replace(tmp, folder)  # atomic; another process may have won the race
            except OSError:
                if not (folder / "params.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    keys = ("sketch", "sketch_labels", "photo", "photo_labels")
    return folder, {key: np.load(folder / f"{key}.npy", mmap_mode="r") for key in keys}


class SyntheticDataset(SBIRDataset):
    """Shape families rendered as photos and sketches; zero-shot transfer by composition."""

    name: ClassVar[str] = "synthetic"
    Config = SyntheticConfig
    config: SyntheticConfig
    splits: ClassVar[tuple[str, ...]] = ("default",)

    def __init__(self, config: SyntheticConfig) -> None:
        if config.split not in (None, "default"):
            raise UserError(
                f"data set 'synthetic' has only the split 'default', not '{config.split}'"
            )
        super().__init__(config)

    @cached_property
    def _cache(self) -> tuple[Path, dict[str, np.ndarray]]:
        return cached_arrays(self.config)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return self._cache[1]

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes re-open the memory maps instead of receiving copies.
        state = self.__dict__.copy()
        state.pop("_cache", None)
        return state

    @property
    def seen_classes(self) -> list[str]:
        return [c for c in CLASSES if c not in UNSEEN]

    @property
    def unseen_classes(self) -> list[str]:
        return list(UNSEEN)

    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        classes = self.seen_classes if subset == "train" else self.unseen_classes
        to_label = {CLASSES.index(name): label for label, name in enumerate(classes)}
        labels = np.asarray(self.arrays[f"{modality}_labels"])
        return [(int(i), to_label[int(c)]) for i, c in enumerate(labels) if int(c) in to_label]

    def open(self, ref: ItemRef, modality: Modality) -> Image.Image:
        array = np.asarray(self.arrays[modality][int(ref)])
        return Image.fromarray(array).convert("RGB")

    def describe(self) -> dict[str, Any]:
        folder, _ = self._cache
        return {
            **super().describe(),
            "layout": "generated",
            "root": str(folder),
            **_params(self.config),
        }
