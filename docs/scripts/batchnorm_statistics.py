"""What BatchNorm statistics do to the frozen backbone, with no learning at all.

``python docs/scripts/batchnorm_statistics.py ../shared/data/sketchy-mini`` embeds
sketchy-mini's sketchy-21 test set (525 sketches x 525 photos) with the ImageNet
efficientnet_lite0 at 128 px (``[weights]`` extra) under four BatchNorm statistics, and
prints mAP@all and mAP@200 for each:

1. its ImageNet running statistics (the frozen row);
2. after one epoch of train-mode forward passes over the training images, photos and
   sketches in separate batches of 32 (what the engine did before ``batchnorm=frozen``);
3. after one epoch of joint passes, 32 photos + 32 sketches a batch (SAKE's and DSN's);
4. each test batch normalised by its own statistics (one modality a batch, 64 images),
   which is what a train-mode step sees.

Forward passes only, training transform ``basic``; the order of the training images is
seeded. Takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from sbirbench.backbones.timm_adapter import EfficientNetLite0
from sbirbench.data.items import ImageItems, collate
from sbirbench.data.transforms import eval_transform, train_transform
from sbirbench.interfaces import InputSpec
from sbirbench.metrics import retrieval_metrics
from sbirbench.pipeline.resolve import build_dataset

METRICS = ("map@all", "map@200")


def batches(items: ImageItems, size: int, shuffle: bool) -> Iterator[torch.Tensor]:
    loader = DataLoader(
        items,
        batch_size=size,
        shuffle=shuffle,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
    )
    for batch in loader:
        yield batch.images


def measure(backbone: nn.Module, dataset, spec: InputSpec, batch_stats: bool) -> dict:
    """The metrics on the test set; ``batch_stats`` normalises each batch by its own."""
    backbone.eval()
    if batch_stats:
        for module in backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train()
                module.momentum = 0.0  # the running statistics stay as they are
    features, labels = {}, {}
    with torch.no_grad():
        for modality in ("sketch", "photo"):
            items = ImageItems(dataset, dataset.items("test", modality), modality,
                               eval_transform(spec), replace=False)  # fmt: skip
            features[modality] = torch.cat(
                [backbone(x)["pooled"] for x in batches(items, 64, False)]
            )
            labels[modality] = torch.tensor([label for _, label in items.items])
    return retrieval_metrics(features["sketch"], labels["sketch"], features["photo"],
                             labels["photo"], metrics=METRICS)  # fmt: skip


def one_epoch(backbone: nn.Module, dataset, spec: InputSpec, joint: bool) -> None:
    """Train-mode forward passes over the training images (running statistics move)."""
    backbone.train()
    streams = [
        batches(ImageItems(dataset, dataset.items("train", m), m, train_transform("basic", spec)),
                32, True)
        for m in ("photo", "sketch")
    ]  # fmt: skip
    with torch.no_grad():
        for photos, sketches in zip(*streams, strict=False):
            if joint:
                backbone(torch.cat([photos, sketches]))
            else:
                backbone(photos)
                backbone(sketches)


def main(root: str) -> None:
    torch.manual_seed(0)
    dataset = build_dataset("sketchy", "zeroshot", root)
    config = EfficientNetLite0.Config(img_size=128, channels_last=True)
    build = lambda: EfficientNetLite0(config)  # noqa: E731
    first = build()
    spec = InputSpec(128, first.mean, first.std, first.interpolation)
    rows = [("ImageNet running statistics (frozen)", measure(first, dataset, spec, False))]
    for joint, name in ((False, "per-modality"), (True, "joint photo+sketch")):
        backbone = build()
        one_epoch(backbone, dataset, spec, joint)
        rows.append((f"after one epoch of {name} passes", measure(backbone, dataset, spec, False)))
    rows.append(("each test batch's own statistics", measure(build(), dataset, spec, True)))
    print("| BatchNorm statistics at test | mAP@all | mAP@200 |\n|---|---|---|")
    for name, metrics in rows:
        print(f"| {name} | {metrics['map@all']:.4f} | {metrics['map@200']:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/sketchy-mini")
