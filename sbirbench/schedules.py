"""Per-step schedules: linear warm-up then cosine, as DINO/TVT/PSKD use them.

torch's LRScheduler classes schedule only the learning rate; the weight decay follows a
cosine too, so both are plain functions of the step (also nothing to checkpoint).
"""

from __future__ import annotations

import math


def cosine(step: int, total: int, start: float, end: float, warmup: int = 0,
           warmup_start: float = 0.0) -> float:
    """DINO's ``cosine_scheduler`` at ``step``: ``warmup`` steps linear from
    ``warmup_start`` to ``start`` (both ends included), then a cosine from ``start``
    towards ``end`` over the remaining steps."""
    warmup = min(warmup, total)
    if step < warmup:
        if warmup == 1:
            return start
        return warmup_start + (start - warmup_start) * step / (warmup - 1)
    span = max(total - warmup, 1)
    progress = (step - warmup) / span
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * progress))
