"""Engine overhead: training images/s of sbirbench's engine against a minimal loop.

    python perf/engine_overhead.py                 # CPU, ce cpu-smoke setting
    python perf/engine_overhead.py --device cuda --precision bf16 --backbone vit_tokens

Both train the same ``ce`` network on the same synthetic batches (photos, plus sketches
every skt_factor-th step), same batch size and precision, for the same number of steps
after one warm-up epoch. The minimal loop is: next batch, forward, loss, backward,
optimizer step. The engine adds schedules, parameter groups, clipping, loss bookkeeping,
non-finite checks, progress, and a checkpoint per epoch. Reported: engine time / loop time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from sbirbench.console import set_output
from sbirbench.data.items import EpochSampler, ImageItems, make_loader
from sbirbench.data.transforms import train_transform
from sbirbench.interfaces import Batch, InputSpec
from sbirbench.pipeline.execute import seed_everything
from sbirbench.pipeline.options import RunOptions
from sbirbench.pipeline.resolve import resolve
from sbirbench.pipeline.store import RunStore
from sbirbench.pipeline.trainer import Trainer, TrainerOptions
from sbirbench.runtime.devices import autocast_context
from sbirbench.runtime.distributed import Context


def build(args):
    overrides = ["augment=none", "clip_grad=3.0"]
    spec = resolve(
        RunOptions(
            method="ce",
            dataset="synthetic",
            backbone=args.backbone,
            batch_size=args.batch,
            epochs=args.epochs,
            device=args.device,
            precision=args.precision,
            overrides=tuple(overrides),
        )
    )
    seed_everything(0)
    dataset = spec.build_dataset()
    method = spec.build_method(len(dataset.seen_classes))
    return spec, dataset, method


def minimal_loop(args, device: torch.device) -> tuple[float, int]:
    _, dataset, method = build(args)
    (stage,) = method.stages()
    net = method.net.to(device).train()
    backbone = net.backbone
    transform = train_transform("none", InputSpec.of(backbone))
    loaders = {}
    for modality in ("photo", "sketch"):
        items = ImageItems(dataset, dataset.items("train", modality), modality, transform)
        sampler = EpochSampler(items, num_replicas=1, rank=0, seed=0)
        loaders[modality] = (
            sampler,
            make_loader(items, sampler, args.batch, workers=0, pin_memory=device.type == "cuda"),
        )
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=device.type == "cuda")
    factor = stage.settings.skt_factor
    steps = min(len(loaders["photo"][1]), len(loaders["sketch"][1]) * factor)
    images, start = 0, None
    for epoch in range(args.epochs):
        if epoch == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, images = time.perf_counter(), 0
        iters = {}
        for modality, (sampler, loader) in loaders.items():
            sampler.begin(epoch)
            iters[modality] = iter(loader)
        for step in range(steps):
            photo = next(iters["photo"])
            batch = Batch(photo.images.to(device), photo.labels.to(device))
            if factor and (step + 1) % factor == 0:
                sketch = next(iters["sketch"])
                batch.sketches, batch.sketch_labels = (
                    sketch.images.to(device),
                    sketch.labels.to(device),
                )
            with autocast_context(device, args.precision):
                loss = stage.training_step(batch)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            images += len(batch.photo_labels) + (
                len(batch.sketch_labels) if batch.sketches is not None else 0
            )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, images


def engine_run(args, device: torch.device) -> tuple[float, int]:
    _, dataset, method = build(args)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(
            method,
            dataset,
            Context(device=device),
            set_output("quiet"),
            TrainerOptions(args.precision, workers=0),
            RunStore(Path(tmp)),
        )
        trainer.train()
    records = [r for r in trainer.history][1:]  # the first epoch is the warm-up
    return sum(r["seconds"] for r in records), int(
        sum(r["images_per_second"] * r["seconds"] for r in records)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--backbone", default="timm_tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(
        f"ce on synthetic, backbone {args.backbone}, batch {args.batch}, {args.precision}, "
        f"{device}, {args.epochs - 1} timed epochs (best of {args.repeats})"
    )
    best = {}
    for name, fn in (("minimal loop", minimal_loop), ("engine", engine_run)):
        runs = [fn(args, device) for _ in range(args.repeats)]
        seconds, images = min(runs)
        best[name] = images / seconds
        print(f"{name:13} {images / seconds:8.1f} img/s  ({images} images in {seconds:.2f} s)")
    print(
        f"engine / minimal loop throughput = {best['engine'] / best['minimal loop']:.3f} "
        f"(overhead {100 * (1 - best['engine'] / best['minimal loop']):.1f}%)"
    )


if __name__ == "__main__":
    main()
