"""Same-class sampling: the photo stream that follows the sketch stream, and sketches
that come in pairs of one class.

Methods that train on (sketch, photo of the same class) pairs (ZSE-SBIR, CLIP-AT) set
``Stage.pair_photos``: the i-th photo of every micro-batch is then a random training
photo of the i-th sketch's class. ``Stage.pair_sketches`` makes sketch 2k+1 of every
micro-batch another training sketch of sketch 2k's class (ZSE-SBIR's second sketch of a
class). Each draw is a pure function of (seed, epoch, position), like every other sample
order of the engine, so a resumed epoch sees the same pairs.

Two limits. A photo drawn twice in one epoch gets the same augmentation both times (a
sample's augmentation is seeded by its epoch and index). An unreadable photo is replaced
by the next readable item, which may be of another class; the method's pairing then finds
another photo of the class in the batch or leaves that sketch out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from sbirbench.data.items import EpochSampler, mix_seed
from sbirbench.errors import UserError


class _ClassIndex:
    """Item indices grouped by class: ``order[starts[c] : starts[c] + counts[c]]`` are
    class c's items, and ``slot[i]`` is item i's place among them."""

    def __init__(self, labels: np.ndarray, size: int) -> None:
        self.order = np.argsort(labels, kind="stable")
        classes, starts, counts = np.unique(
            labels[self.order], return_index=True, return_counts=True
        )
        size = max(size, int(classes.max(initial=-1)) + 1)
        self.starts = np.zeros(size, dtype=np.int64)
        self.counts = np.zeros(size, dtype=np.int64)
        self.starts[classes], self.counts[classes] = starts, counts
        self.slot = np.empty(len(labels), dtype=np.int64)
        self.slot[self.order] = np.arange(len(labels)) - self.starts[labels[self.order]]

    def draw(
        self, labels: np.ndarray, draws: np.ndarray, avoid: np.ndarray | None = None
    ) -> np.ndarray:
        """One item of each class in ``labels``, uniform by ``draws`` in [0, 1); with
        ``avoid`` (items), another item than it where its class has one."""
        counts = self.counts[labels]
        if avoid is None:
            offsets = np.minimum((draws * counts).astype(np.int64), counts - 1)
        else:
            others = np.maximum(counts - 1, 1)
            offsets = np.minimum((draws * others).astype(np.int64), others - 1)
            offsets = np.where(counts > 1, offsets + (offsets >= self.slot[avoid]), 0)
        return self.order[self.starts[labels] + offsets]


class SketchPairSampler(EpochSampler):
    """This rank's shuffled sketch order with every odd position replaced by another
    sketch of the class of the sketch before it (the same sketch where its class has only
    one), so a micro-batch of even size holds same-class pairs at (2k, 2k+1)."""

    def __init__(
        self, sketches: Dataset, labels: Sequence[int], *, num_replicas: int, rank: int, seed: int
    ) -> None:
        super().__init__(sketches, num_replicas=num_replicas, rank=rank, seed=seed)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.index = _ClassIndex(self.labels, 0)

    def epoch_order(self) -> list[int]:
        order = np.asarray(super().epoch_order(), dtype=np.int64)
        anchors = order[0 : len(order) - 1 : 2]
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, self.rank, 1))
        draws = torch.rand(len(anchors), generator=generator, dtype=torch.float64).numpy()
        order[1::2] = self.index.draw(self.labels[anchors], draws, avoid=anchors)
        return order.tolist()


class SameClassSampler(EpochSampler):
    """Photo indices for the sketches ``sketches`` yields: the i-th photo is drawn
    uniformly among the training photos of the i-th sketch's class."""

    def __init__(
        self,
        photos: Dataset,
        sketches: EpochSampler,
        sketch_labels: Sequence[int],
        photo_labels: Sequence[int],
        *,
        seed: int,
    ) -> None:
        super().__init__(photos, num_replicas=sketches.num_replicas, rank=sketches.rank, seed=seed)
        self.sketches = sketches
        self.num_samples, self.total_size = sketches.num_samples, sketches.total_size
        self.sketch_labels = np.asarray(sketch_labels, dtype=np.int64)
        labels = np.asarray(photo_labels, dtype=np.int64)
        missing = sorted(set(self.sketch_labels.tolist()) - set(labels.tolist()))
        if missing:
            raise UserError(
                f"pairing sketches with photos of their class: {len(missing)} training "
                f"class(es) have sketches but no photo (labels {missing[:5]})"
            )
        self.index = _ClassIndex(labels, int(self.sketch_labels.max(initial=-1)) + 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # The sketch order of this epoch from its start, whatever start the sketch
        # sampler is set to (a copy, so the sketch stream itself is untouched).
        view = copy.copy(self.sketches)
        view.set_epoch(self.epoch)
        sketch_indices = np.asarray(view.epoch_order(), dtype=np.int64)
        labels = self.sketch_labels[sketch_indices]
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, self.rank))
        draws = torch.rand(len(labels), generator=generator, dtype=torch.float64).numpy()
        photos = self.index.draw(labels, draws)[self.start :]
        return iter([(self.epoch, int(i)) for i in photos])
