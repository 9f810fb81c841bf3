"""A validation split: some seen classes play the unseen ones, the real unseen classes are
never looked at. For choosing hyper-parameters without tuning on the test classes.

``--set dataset.validation_classes=N`` holds out N seen classes (a seeded choice,
``dataset.validation_seed``); training uses the other seen classes, and retrieval is
evaluated on the held-out classes' training images. Results are recorded under
``<dataset>-<split>-val<N>``, never under a benchmark's name.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sbirbench.errors import UserError
from sbirbench.interfaces import Item, ItemRef, Modality, SBIRDataset, Subset


class ValidationView(SBIRDataset):
    """``dataset`` with ``count`` of its seen classes held out as the test classes."""

    def __init__(self, dataset: SBIRDataset, count: int, seed: int = 0) -> None:
        super().__init__(dataset.config)
        seen = list(dataset.seen_classes)
        if not 0 < count < len(seen):
            raise UserError(
                f"dataset.validation_classes={count}: must be between 1 and "
                f"{len(seen) - 1} (the data set has {len(seen)} seen classes)"
            )
        self.inner = dataset
        self.name = dataset.name  # type: ignore[misc]
        held = set(random.Random(seed).sample(range(len(seen)), count))
        self._train = [i for i in range(len(seen)) if i not in held]
        self._test = sorted(held)
        self._seed = seed
        self._items: dict[tuple[str, str], list[Item]] = {}
        for modality in ("sketch", "photo"):
            source = dataset.items("train", modality)
            for subset, labels in (("train", self._train), ("test", self._test)):
                new = {old: i for i, old in enumerate(labels)}
                self._items[(subset, modality)] = [
                    (ref, new[label]) for ref, label in source if label in new
                ]

    @property
    def split(self) -> str:
        return self.inner.split

    @property
    def seen_classes(self) -> list[str]:
        return [self.inner.seen_classes[i] for i in self._train]

    @property
    def unseen_classes(self) -> list[str]:
        return [self.inner.seen_classes[i] for i in self._test]

    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        return self._items[(subset, modality)]

    def open(self, ref: ItemRef, modality: Modality) -> Any:
        return self.inner.open(ref, modality)

    def describe(self) -> dict[str, Any]:
        return {
            **self.inner.describe(),
            "validation": {
                "held_out": self.unseen_classes,
                "seed": self._seed,
                "note": "seen classes as the test set; unseen classes unused",
            },
        }


def apply_validation(dataset: SBIRDataset) -> SBIRDataset:
    """The data set itself, or its validation view when its config asks for one."""
    count = getattr(dataset.config, "validation_classes", 0)
    if not count:
        return dataset
    return ValidationView(dataset, count, getattr(dataset.config, "validation_seed", 0))
