"""Generalised zero-shot (GZS-SBIR): some seen-class images join the test set.

The rule (docs/protocols.md, section 1): per modality, K items of the seen classes are
held out (``count="sem-pcyc"``: 20% of the unseen test items, SEM-PCYC's count;
``"fraction"``: 20% of the seen items), shared between the seen classes by largest
remainder in proportion to their size (ties by class name, at most all but one item of a
class). Within a class the items are sorted by path and permuted by a generator seeded
from ``sha256("gzs|seed|dataset|class|modality")``, and the first ``k_c`` are held out,
so no class's choice depends on another's, on file-system order or on global state.
With ``holdout`` they leave the training set (SEM-PCYC keeps them). The test set is the
unseen items plus the held-out ones; test labels index ``unseen_classes + seen_classes``.

No torch here: the view is built while a run is bound to its data.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from sbirbench.interfaces import Item, ItemRef, Modality, SBIRDataset, Subset
from sbirbench.runtime.paths import relative_to_root

MODALITIES: tuple[Modality, Modality] = ("sketch", "photo")
SHARE = 0.2


@dataclass(frozen=True)
class GZSOptions:
    """How the seen part of a GZS test set is drawn (a benchmark's ``gzs`` table)."""

    seed: int = 0
    count: Literal["sem-pcyc", "fraction"] = "sem-pcyc"
    holdout: bool = True


def allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Share ``total`` units between classes in proportion to ``sizes`` by largest
    remainder (ties by class name), at most ``size - 1`` for a class."""
    seen = sum(sizes.values())
    if seen == 0 or total <= 0:
        return {name: 0 for name in sizes}
    quota = {name: total * n / seen for name, n in sizes.items()}
    shares = {name: math.floor(q) for name, q in quota.items()}
    left = total - sum(shares.values())
    by_remainder = sorted(sizes, key=lambda name: (-(quota[name] - shares[name]), name))
    for name in by_remainder[:left]:
        shares[name] += 1
    return {name: max(0, min(shares[name], sizes[name] - 1)) for name in sizes}


def class_generator(seed: int, dataset: str, name: str, modality: str) -> Any:
    """The ``numpy.random.Generator`` that orders one class's items (independent of every
    other class); numpy is imported here so that reading benchmarks.toml stays light."""
    import numpy as np

    digest = hashlib.sha256(f"gzs|{seed}|{dataset}|{name}|{modality}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "little")))


def held_out(base: SBIRDataset, options: GZSOptions) -> dict[Modality, set[str]]:
    """The relative paths of the seen items held out for the test set, per modality."""
    root = str(base.describe().get("root") or "")
    out: dict[Modality, set[str]] = {}
    for modality in MODALITIES:
        by_class: dict[str, list[str]] = {name: [] for name in base.seen_classes}
        for ref, label in base.items("train", modality):
            by_class[base.seen_classes[label]].append(relative_to_root(ref, root))
        unseen = len(base.items("test", modality))
        seen = sum(len(v) for v in by_class.values())
        total = math.floor(SHARE * (unseen if options.count == "sem-pcyc" else seen))
        counts = allocate(total, {name: len(v) for name, v in by_class.items()})
        chosen: set[str] = set()
        for name, paths in by_class.items():
            order = class_generator(options.seed, base.name, name, modality).permutation(len(paths))
            ordered = sorted(paths)
            chosen.update(ordered[int(i)] for i in order[: counts[name]])
        out[modality] = chosen
    return out


class GZSView(SBIRDataset):
    """A data set seen through the GZS rule: held-out seen items move to the test set."""

    name: ClassVar[str] = "gzs-view"  # what it reads and records is the base data set's

    def __init__(self, base: SBIRDataset, options: GZSOptions) -> None:
        super().__init__(base.config)
        self.base, self.options = base, options
        self.root = str(base.describe().get("root") or "")
        self.held = held_out(base, options)
        self.unseen_count = len(base.unseen_classes)
        self._items: dict[tuple[Subset, Modality], list[Item]] = {}
        for modality in MODALITIES:
            train = list(base.items("train", modality))
            is_held = [relative_to_root(ref, self.root) in self.held[modality] for ref, _ in train]
            moved = [item for item, held in zip(train, is_held, strict=True) if held]
            kept = (
                [item for item, held in zip(train, is_held, strict=True) if not held]
                if options.holdout
                else train
            )
            test = list(base.items("test", modality))
            self._items["train", modality] = kept
            self._items["test", modality] = test + [
                (ref, self.unseen_count + label) for ref, label in moved
            ]

    @property
    def split(self) -> str:
        return self.base.split

    @property
    def seen_classes(self) -> list[str]:
        return self.base.seen_classes

    @property
    def unseen_classes(self) -> list[str]:
        """Test labels: the unseen classes, then the seen ones."""
        return self.base.unseen_classes + self.base.seen_classes

    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        return self._items[subset, modality]

    def open(self, ref: ItemRef, modality: Modality) -> Any:
        return self.base.open(ref, modality)

    def is_seen_label(self, label: int) -> bool:
        """Whether a test label is one of the seen classes."""
        return label >= self.unseen_count

    def describe(self) -> dict[str, Any]:
        listing = "\n".join(
            f"{modality}\t{path}" for modality in MODALITIES for path in sorted(self.held[modality])
        )
        return {
            **self.base.describe(),
            "gzs": {
                **asdict(self.options),
                "rule": "docs/protocols.md section 1 (sbirbench GZS v1)",
                "held_out": {m: len(self.held[m]) for m in MODALITIES},
                "held_out_sha256": hashlib.sha256(listing.encode()).hexdigest(),
                "test_unseen": {m: len(self.base.items("test", m)) for m in MODALITIES},
            },
        }
