"""Device-side numerics: autocast for the chosen precision."""

from __future__ import annotations

import contextlib

import torch


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on GPUs (bf16 on the CPU too); fp32 is no autocast at all."""
    if precision == "fp32" or (device.type != "cuda" and precision == "fp16"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
