"""Per-sample seeding of the augmentation: ``torch.manual_seed`` against seeding only the
CPU generator, with the training transform of a 64-px image as the yardstick.

    python perf/sample_seeding.py [--samples 2000]

Each training image is augmented under its own seed (sbirbench.data.items), so the seeding runs
once per sample. With a CUDA build of torch, ``torch.manual_seed`` also queues a lazy CUDA
seed and records a stack trace each time, even on a CPU-only machine.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from sbirbench.data.transforms import train_transform
from sbirbench.interfaces import InputSpec


def timed(
    samples: int, seed: Callable[[int], object], work: Callable[[], object], depth: int = 0
) -> float:
    """Seconds a sample, called ``depth`` frames down (a stack trace costs per frame)."""
    if depth > 0:
        return timed(samples, seed, work, depth - 1)
    start = time.perf_counter()
    for i in range(samples):
        with torch.random.fork_rng(devices=[]):
            seed(i)
            random.seed(i)
            work()
    return (time.perf_counter() - start) / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument(
        "--depth", type=int, default=40, help="stack depth (a training run's data loading: ~40)"
    )
    args = parser.parse_args()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    # cpu-smoke's training transform of a 64-px synthetic image
    transform = train_transform("none", InputSpec(64, (0.5,) * 3, (0.5,) * 3))
    rows = [
        (
            "transform alone (reference)",
            timed(args.samples, lambda i: None, lambda: transform(image), args.depth),
        ),
        (
            "torch.manual_seed + transform",
            timed(args.samples, torch.manual_seed, lambda: transform(image), args.depth),
        ),
        (
            "torch.default_generator.manual_seed + transform",
            timed(
                args.samples,
                torch.default_generator.manual_seed,
                lambda: transform(image),
                args.depth,
            ),
        ),
    ]
    reference = rows[0][1]
    cuda = torch.version.cuda is not None
    print(f"torch {torch.__version__} (CUDA build: {cuda}); {args.samples} samples")
    print(f"{args.depth} frames down")
    print("| per sample | ms | vs transform alone |\n|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.3f} | {seconds / reference:.2f}x |")


if __name__ == "__main__":
    main()
