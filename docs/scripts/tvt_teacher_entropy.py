"""The entropy of TVT's teacher target on real images, for the teacher's output scales.

``python docs/scripts/tvt_teacher_entropy.py ../shared/data/sketchy-mini [sketch]``
builds the ImageNet efficientnet_lite0 (``[weights]`` extra) at 128 px, runs it on 500
sketchy-mini photos (or sketches), spread over the classes, and prints the mean entropy
(nats) of ``softmax((t - c) / tau)`` at the teacher temperatures 0.04 and 0.07. ``t`` is
the raw logits, the logits times 0.07 (``scaled``) or the cosine output
(docs/methods/tvt.md); ``c`` is the images' mean output (DINO's centre). A uniform target
over 1000 classes has 6.91 nats, a one-hot one 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from PIL import Image

from sbirbench.backbones.timm_adapter import EfficientNetLite0
from sbirbench.data.transforms import eval_transform
from sbirbench.interfaces import InputSpec
from sbirbench.methods.tvt_parts import imagenet_output


def main(root: Path, modality: str = "photo", limit: int = 500) -> None:
    backbone = EfficientNetLite0(EfficientNetLite0.Config(imagenet_head=True, img_size=128))
    backbone.eval()
    transform = eval_transform(InputSpec(128, backbone.mean, backbone.std, "bicubic"))
    every = sorted(p for p in (root / modality).rglob("*") if p.suffix in (".jpg", ".png"))
    paths = every[:: max(1, len(every) // limit)][:limit]  # spread over the classes
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    print(f"{len(paths)} {modality} images from {root}")
    with torch.no_grad():
        for kind in ("logits", "scaled", "cosine"):
            t = imagenet_output(backbone, images, kind, 0.07)
            spread = float((t.max(1).values - t.min(1).values).mean())
            for tau in (0.04, 0.07):
                q = torch.softmax((t - t.mean(0)) / tau, dim=1)
                entropy = float(-(q * q.clamp_min(1e-30).log()).sum(1).mean())
                print(f"{kind:7s} range {spread:6.2f}  tau {tau}: entropy {entropy:.3f} nats")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/sketchy-mini"), *sys.argv[2:3])
