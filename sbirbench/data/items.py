"""Turning an SBIRDataset into tensors: samplers, loaders, unreadable images.

Data order and augmentation are pure functions of (seed, stream, epoch, index): the
sampler yields ``(epoch, index)`` pairs and each sample seeds its own augmentation from
them. A run therefore sees the same batches whatever the number of loader workers, and
a run resumed mid-epoch continues exactly where it stopped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from sbirbench.errors import UserError
from sbirbench.interfaces import Item, Modality, SBIRDataset

#: How many following items are tried in place of an unreadable one.
MAX_REPLACEMENTS = 16
_MASK = 0xFFFF_FFFF_FFFF_FFFF


class UnreadableImage(UserError):
    """An image could not be read and the data set is set to ``on_corrupt=error``."""


@dataclass
class Sample:
    image: torch.Tensor
    label: int
    index: int
    unreadable: tuple[str, ...]


class ImageItems(Dataset):
    """The items of one subset and modality, opened, transformed and seeded per sample.

    An unreadable image is replaced by the next readable item (training) or dropped
    (evaluation, ``replace=False``), and its path is reported with the batch.
    """

    def __init__(
        self,
        dataset: SBIRDataset,
        items: Sequence[Item],
        modality: Modality,
        transform: Callable,
        *,
        seed: int = 0,
        stream: int = 0,
        replace: bool = True,
    ) -> None:
        self.dataset = dataset
        self.items = list(items)
        self.modality = modality
        self.transform = transform
        self.seed = seed
        self.stream = stream
        self.replace = replace
        self.strict = getattr(dataset.config, "on_corrupt", "skip") == "error"

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, index: int):
        ref = self.items[index][0]
        try:
            image = self.dataset.open(ref, self.modality)
            image.load()
            return image.convert("RGB") if image.mode != "RGB" else image
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            if self.strict:
                raise UnreadableImage(f"unreadable image {ref}: {exc}") from None
            return None

    def __getitem__(self, key: tuple[int, int] | int) -> Sample | None:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        bad: list[str] = []
        for attempt in range(MAX_REPLACEMENTS if self.replace else 1):
            current = (index + attempt) % len(self.items)
            image = self._load(current)
            if image is not None:
                break
            bad.append(str(self.items[current][0]))
        else:
            if self.replace:
                raise UserError(
                    f"{MAX_REPLACEMENTS} consecutive unreadable images from "
                    f"{bad[0]}; check the data with `sbirbench data check`"
                )
            return Sample(torch.empty(0), -1, index, tuple(bad))
        tensor = self._augment(image, epoch, index)
        return Sample(tensor, self.items[current][1], current, tuple(bad))

    def _augment(self, image, epoch: int, index: int) -> torch.Tensor:
        # Seed torch and random from (seed, stream, epoch, index), leaving the caller's
        # generators as they were.
        seed = mix_seed(self.seed, self.stream, epoch, index)
        state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also queue a lazy CUDA
            # seed, which records a stack trace on every call (~1.4 ms a sample, PERFORMANCE.md).
            torch.default_generator.manual_seed(seed)
            random.seed(seed)
            tensor = self.transform(image)
        random.setstate(state)
        return tensor


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps; stable across Python versions)."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (part & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & _MASK
    return state >> 1


@dataclass
class LoadedBatch:
    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    unreadable: tuple[str, ...]


def collate(samples: list[Sample]) -> LoadedBatch:
    """Stack readable samples; carry the paths of unreadable ones."""
    bad = tuple(path for s in samples for path in s.unreadable)
    good = [s for s in samples if s.label >= 0]
    if not good:
        return LoadedBatch(
            torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), bad
        )
    return LoadedBatch(
        default_collate([s.image for s in good]),
        torch.tensor([s.label for s in good]),
        torch.tensor([s.index for s in good]),
        bad,
    )


class EpochSampler(DistributedSampler):
    """A DistributedSampler that yields ``(epoch, index)`` and can start mid-epoch."""

    def __init__(
        self,
        data: Dataset,
        *,
        num_replicas: int,
        rank: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        super().__init__(
            data,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.start = 0

    def begin(self, epoch: int, start: int = 0) -> None:
        """Set the epoch (reshuffles) and how many of its items this rank skips."""
        self.set_epoch(epoch)
        self.start = start

    def epoch_order(self) -> list[int]:
        """This rank's item indices of the whole current epoch, in order (a sampler that
        follows this one, such as a same-class photo sampler, reads it)."""
        return list(super().__iter__())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = self.epoch_order()[self.start :]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


def make_loader(
    items: ImageItems,
    sampler: EpochSampler | None,
    batch_size: int,
    *,
    workers: int,
    pin_memory: bool,
    drop_last: bool = True,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with our collate; persistent workers when there are any. Its own
    generator seeds the workers, so the global torch RNG (and resuming) is unaffected."""
    kwargs: dict[str, Any] = {"generator": torch.Generator().manual_seed(seed)}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=4)
    return DataLoader(
        items,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        collate_fn=collate,
        **kwargs,
    )


def batches_per_epoch(num_items: int, world: int, batch: int) -> int:
    """Full batches one rank gets from a drop-last DistributedSampler."""
    return (num_items // world) // batch


def shard(num_items: int, rank: int, world: int) -> list[int]:
    """Indices this rank embeds in evaluation: a strided share, no padding."""
    return list(range(rank, num_items, world))
