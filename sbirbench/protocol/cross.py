"""Cross-data-set zero-shot: train on one data set, test on another's unseen classes.

The rule (docs/protocols.md, section 3): every class of the source data set (seen and
unseen of its split alike) is a training class, except those whose normalised name
(:func:`sbirbench.protocol.classnames.normalize`) equals one of the target's unseen classes.
``overlap="drop_train"`` (default) removes them from training, so the target's test set
is the standard benchmark's; ``"drop_test"`` keeps them for training and removes them
from the target's test set instead. The dropped classes are recorded by name.

No torch here: the view is built while a run is bound to its data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from sbirbench.errors import UserError
from sbirbench.interfaces import Item, ItemRef, Modality, SBIRDataset, Subset
from sbirbench.protocol.classnames import normalize

MODALITIES: tuple[Modality, Modality] = ("sketch", "photo")


@dataclass(frozen=True)
class CrossOptions:
    """The source data set (and its split, whose seen and unseen classes all train), and
    which side loses the overlapping classes (a benchmark's ``cross`` table)."""

    source: str
    source_split: str | None = None
    overlap: Literal["drop_train", "drop_test"] = "drop_train"


class CrossView(SBIRDataset):
    """Training items from ``source``, test items from ``target``, overlap removed."""

    name: ClassVar[str] = "cross-view"  # what it records is the target's and the source's

    def __init__(self, source: SBIRDataset, target: SBIRDataset, options: CrossOptions) -> None:
        super().__init__(target.config)
        self.source, self.target, self.options = source, target, options
        target_names = {normalize(c) for c in target.unseen_classes}
        classes = source.seen_classes + source.unseen_classes
        self.overlapping = [c for c in classes if normalize(c) in target_names]
        shared = {normalize(c) for c in self.overlapping}
        drop_train = options.overlap == "drop_train"
        self._seen = [c for c in classes if not (drop_train and normalize(c) in shared)]
        self._unseen = [
            c for c in target.unseen_classes if drop_train or normalize(c) not in shared
        ]
        self._items: dict[tuple[Subset, Modality], list[Item]] = {}
        self._from_source: dict[Modality, set[ItemRef]] = {}
        seen_index = {c: i for i, c in enumerate(self._seen)}
        unseen_index = {c: i for i, c in enumerate(self._unseen)}
        for modality in MODALITIES:
            train = [
                (ref, seen_index[names[label]])
                for subset, names in (
                    ("train", source.seen_classes),
                    ("test", source.unseen_classes),
                )
                for ref, label in source.items(subset, modality)  # type: ignore[arg-type]
                if names[label] in seen_index
            ]
            test = [
                (ref, unseen_index[target.unseen_classes[label]])
                for ref, label in target.items("test", modality)
                if target.unseen_classes[label] in unseen_index
            ]
            if not all(isinstance(ref, str) for ref, _ in (*train[:1], *test[:1])):
                raise UserError(
                    "the cross-data-set protocol needs two data sets of image files "
                    f"({source.name} -> {target.name})"
                )
            self._items["train", modality] = train
            self._items["test", modality] = test
            self._from_source[modality] = {ref for ref, _ in train}

    @property
    def split(self) -> str:
        return self.target.split

    @property
    def seen_classes(self) -> list[str]:
        return self._seen

    @property
    def unseen_classes(self) -> list[str]:
        return self._unseen

    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        return self._items[subset, modality]

    def open(self, ref: ItemRef, modality: Modality) -> Any:
        owner = self.source if ref in self._from_source[modality] else self.target
        return owner.open(ref, modality)

    def describe(self) -> dict[str, Any]:
        return {
            **self.target.describe(),
            "cross": {
                "source": self.source.describe(),
                "overlap": self.options.overlap,
                "rule": "docs/protocols.md section 3 (sbirbench cross-data-set v1)",
                "dropped_classes": sorted(self.overlapping),
                "training_classes": len(self._seen),
                "test_classes": len(self._unseen),
                "training_items": {m: len(self._items["train", m]) for m in MODALITIES},
            },
        }
