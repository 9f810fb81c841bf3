"""The photo and sketch streams of a training stage.

Data order and augmentation are seeded by the stage's name, not its position, so a stage
sees the same batches whether or not earlier stages ran in this process (a reused
teacher, a resumed run).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch.utils.data import DataLoader

from sbirbench.data.items import (
    EpochSampler,
    ImageItems,
    LoadedBatch,
    batches_per_epoch,
    make_loader,
    mix_seed,
)
from sbirbench.data.pairing import SameClassSampler, SketchPairSampler
from sbirbench.errors import UserError
from sbirbench.interfaces import Modality, SBIRDataset, Schedule, Stage
from sbirbench.runtime.distributed import Context

MODALITIES: tuple[Modality, Modality] = ("photo", "sketch")


@dataclass
class Stream:
    """One modality's items, sampler and loader."""

    sampler: EpochSampler
    loader: DataLoader

    def start(self, epoch: int, used_batches: int) -> Iterator[LoadedBatch]:
        """Batches of ``epoch`` after the first ``used_batches`` (a resumed epoch)."""
        self.sampler.begin(epoch, used_batches * (self.loader.batch_size or 1))
        return iter(self.loader)


def steps_per_epoch(stage: Stage, dataset: SBIRDataset, world: int) -> int:
    """Optimiser steps per epoch: until the photo or the sketch stream runs out."""
    settings = stage.settings
    micro = settings.batch_size // settings.accum_steps
    modalities: tuple[Modality, ...] = ("photo", "sketch") if settings.skt_factor else ("photo",)
    counts = {m: len(dataset.items("train", m)) for m in modalities}
    if stage.pair_photos:
        if settings.skt_factor != 1:
            raise UserError(
                f"stage {stage.name} pairs each sketch with a photo of its class, which "
                f"needs skt_factor=1 (got {settings.skt_factor})"
            )
        if micro < 2:
            raise UserError(
                f"stage {stage.name} pairs sketches with photos inside a micro-batch, which "
                f"needs at least 2 images a micro-batch (batch_size {settings.batch_size}, "
                f"accum_steps {settings.accum_steps})"
            )
        counts["photo"] = counts["sketch"] if counts["photo"] else 0  # one photo per sketch
    if stage.pair_sketches and (micro % 2 or not settings.skt_factor):
        raise UserError(
            f"stage {stage.name} draws sketches in same-class pairs, which needs sketches "
            f"and an even number of images a micro-batch (batch_size {settings.batch_size}, "
            f"accum_steps {settings.accum_steps})"
        )
    if not counts["photo"]:
        raise UserError(
            f"stage {stage.name}: the data set has no training photos (are all its classes unseen?)"
        )
    steps = batches_per_epoch(counts["photo"], world, micro) // settings.accum_steps
    if "sketch" in counts:
        steps = min(
            steps,
            batches_per_epoch(counts["sketch"], world, micro)
            * settings.skt_factor
            // settings.accum_steps,
        )
    if steps == 0:
        listed = " and ".join(f"{n} training {m}s" for m, n in counts.items())
        raise UserError(
            f"stage {stage.name}: batch_size {settings.batch_size} is too "
            f"large for {listed} on {world} process(es)"
        )
    return steps


def make_streams(
    stage_name: str,
    settings: Schedule,
    dataset: SBIRDataset,
    transform: Callable,
    context: Context,
    seed: int,
    workers: int,
    pair_photos: bool = False,
    pair_sketches: bool = False,
) -> dict[Modality, Stream]:
    """The photo stream, and the sketch stream unless the stage uses no sketches; with
    ``pair_photos`` the photo stream follows the sketch stream class by class, with
    ``pair_sketches`` the sketches come in same-class pairs."""
    micro = settings.batch_size // settings.accum_steps
    stage_id = zlib.crc32(stage_name.encode())
    streams: dict[Modality, Stream] = {}
    samplers: dict[Modality, EpochSampler] = {}
    # The sketch sampler is made first: a paired photo sampler follows it.
    for index, modality in reversed(list(enumerate(MODALITIES))):
        if modality == "sketch" and settings.skt_factor == 0:
            continue
        items = ImageItems(
            dataset,
            dataset.items("train", modality),
            modality,
            transform,
            seed=seed,
            stream=2 * stage_id + index,
        )
        sampler: EpochSampler
        if modality == "photo" and pair_photos:
            sampler = SameClassSampler(
                items,
                samplers["sketch"],
                [label for _, label in dataset.items("train", "sketch")],
                [label for _, label in dataset.items("train", "photo")],
                seed=mix_seed(seed, stage_id, index),
            )
        elif modality == "sketch" and pair_sketches:
            sampler = SketchPairSampler(
                items,
                [label for _, label in dataset.items("train", "sketch")],
                num_replicas=context.world,
                rank=context.rank,
                seed=mix_seed(seed, stage_id, index),
            )
        else:
            sampler = EpochSampler(
                items,
                num_replicas=context.world,
                rank=context.rank,
                seed=mix_seed(seed, stage_id, index),
            )
        samplers[modality] = sampler
        loader = make_loader(
            items,
            sampler,
            micro,
            workers=workers,
            pin_memory=context.device.type == "cuda",
            seed=mix_seed(seed, stage_id, index, context.rank),
        )
        streams[modality] = Stream(sampler, loader)
    return {m: streams[m] for m in MODALITIES if m in streams}
