"""Same-class photo sampling: the photo stream that follows the sketch stream.

Methods that train on (sketch, photo of the same class) pairs (ZSE-SBIR, CLIP-AT) set
``Stage.pair_photos``: the i-th photo of every micro-batch is then a random training
photo of the i-th sketch's class. The draw is a pure function of (seed, epoch, position),
like every other sample order of the engine, so a resumed epoch sees the same pairs.

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
from torch.utils.data import Dataset, DistributedSampler

from sbirbench.data import EpochSampler, mix_seed
from sbirbench.errors import UserError


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
        self.order = np.argsort(labels, kind="stable")  # photo indices grouped by class
        classes, starts, counts = np.unique(
            labels[self.order], return_index=True, return_counts=True
        )
        size = int(self.sketch_labels.max(initial=-1)) + 1
        size = max(size, int(classes.max(initial=-1)) + 1)
        self.starts = np.zeros(size, dtype=np.int64)
        self.counts = np.zeros(size, dtype=np.int64)
        self.starts[classes], self.counts[classes] = starts, counts

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # The sketch order of this epoch from its start, whatever start the sketch
        # sampler is set to (a copy, so the sketch stream itself is untouched).
        view = copy.copy(self.sketches)
        view.set_epoch(self.epoch)
        sketch_indices = np.asarray(list(DistributedSampler.__iter__(view)), dtype=np.int64)
        labels = self.sketch_labels[sketch_indices]
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, self.rank))
        draws = torch.rand(len(labels), generator=generator, dtype=torch.float64).numpy()
        offsets = np.minimum(
            (draws * self.counts[labels]).astype(np.int64), self.counts[labels] - 1
        )
        photos = self.order[self.starts[labels] + offsets][self.start :]
        return iter([(self.epoch, int(i)) for i in photos])
