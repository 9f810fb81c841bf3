"""Optimiser set-up shared by every method: AdamW parameter groups and clipping."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from sbirbench.interfaces import ParamGroup


def param_groups(
    modules: dict[str, nn.Module],
    groups: Sequence[ParamGroup] | None,
) -> list[dict]:
    """AdamW groups: each ParamGroup split into decayed and not-decayed parameters (no
    decay on biases and one-dimensional parameters such as norm weights, as in DINO).
    Parameters not named by any group form a final group with multiplier 1."""
    seen: set[int] = set()
    out: list[dict] = []

    def add(name: str, named: Iterable[tuple[str, nn.Parameter]], lr_mult: float) -> None:
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for pname, param in named:
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if pname.endswith(".bias") or param.ndim <= 1 else decay).append(param)
        for params, apply_wd in ((decay, True), (no_decay, False)):
            if params:
                out.append(
                    {
                        "params": params,
                        "lr_mult": lr_mult,
                        "apply_wd": apply_wd,
                        "name": f"{name}{'' if apply_wd else '/no_decay'}",
                    }
                )

    for group in groups or ():
        add(
            group.name,
            ((n, p) for m in group.modules for n, p in m.named_parameters()),
            group.lr_mult,
        )
    add("rest", ((n, p) for m in modules.values() for n, p in m.named_parameters()), 1.0)
    return out


def make_adamw(groups: list[dict], device: torch.device) -> torch.optim.AdamW:
    """AdamW (fused on CUDA); learning rate and weight decay are set every step."""
    return torch.optim.AdamW(groups, lr=0.0, weight_decay=0.0, fused=device.type == "cuda")


def set_step_values(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Apply this step's scheduled learning rate and weight decay to every group."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
        group["weight_decay"] = weight_decay if group["apply_wd"] else 0.0


def clip_gradients(
    parameters: list[nn.Parameter], max_norm: float | None, mode: str
) -> torch.Tensor:
    """Clip each parameter's gradient norm (``param``, DINO's clip_gradients) or the
    global norm (``global``); no clipping when ``max_norm`` is None. Returns whether every
    gradient is finite, as a tensor (no host synchronisation here)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool)
    if mode == "global" or max_norm is None:
        limit = float("inf") if max_norm is None else max_norm
        return torch.isfinite(torch.nn.utils.clip_grad_norm_(parameters, limit, foreach=True))
    norms = [torch.linalg.vector_norm(grad) for grad in grads]
    for grad, norm in zip(grads, norms, strict=True):  # a few small kernels per tensor
        grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return torch.isfinite(torch.stack(norms).sum())
