"""One code path for 1..N processes: torchrun's environment and the collectives.

Processes are started by torchrun, or by ``sbirbench run --nproc N``
(:mod:`sbirbench.cli.launch`, PyTorch's own launcher); both reach this code. NCCL on
GPUs, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from sbirbench.errors import UserError


@dataclass(frozen=True)
class Context:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    """Whether torchrun (or an equivalent launcher) set up this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str) -> Context:
    """Initialise the process group when launched by torchrun; pick this rank's device."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA device is available")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Context(device=torch.device("cuda" if device == "cuda" else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device == "cuda" else "gloo", device_id=target if device == "cuda" else None
        )
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, target)


def teardown(context: Context, *, succeeded: bool = True) -> None:
    """Leave the process group. After a failure there is no barrier: the other ranks may
    be inside another collective, and torchrun stops them when this process exits."""
    if context.distributed and dist.is_initialized():
        if succeeded:
            dist.barrier()
        dist.destroy_process_group()


def agree(flag: bool, context: Context) -> bool:
    """True only if ``flag`` is true on every rank (so all take the same path)."""
    if not context.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], device=_collective_device(context))
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def max_over_ranks(value: int, context: Context) -> int:
    if not context.distributed:
        return value
    tensor = torch.tensor([value], device=_collective_device(context))
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def _collective_device(context: Context) -> torch.device:
    return context.device if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_object(value: Any, context: Context) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not context.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Sum over ranks (in place)."""
    if context.distributed:
        dist.all_reduce(tensor)
    return tensor


def gather_by_index(
    features: torch.Tensor, indices: torch.Tensor, total: int, context: Context
) -> tuple[torch.Tensor, torch.Tensor]:
    """Assemble per-rank feature shards into the full ``(total, D)`` matrix by dataset
    index, as DINO's kNN evaluation does; shards may differ in size. Returns the matrix
    and a mask of the indices some rank filled (an unreadable image leaves a hole)."""
    dim = features.shape[1] if features.ndim == 2 else 0
    if not context.distributed:
        out = features.new_zeros(total, dim)
        filled = torch.zeros(total, dtype=torch.bool, device=features.device)
        out[indices] = features
        filled[indices] = True
        return out, filled
    sizes = [torch.zeros(1, dtype=torch.long, device=features.device) for _ in range(context.world)]
    dist.all_gather(sizes, torch.tensor([len(indices)], device=features.device))
    width = int(max(s.item() for s in sizes))
    padded_feats = features.new_zeros(width, dim)
    padded_feats[: len(features)] = features
    padded_idx = torch.full((width,), -1, dtype=torch.long, device=features.device)
    padded_idx[: len(indices)] = indices
    all_feats = [torch.empty_like(padded_feats) for _ in range(context.world)]
    all_idx = [torch.empty_like(padded_idx) for _ in range(context.world)]
    dist.all_gather(all_feats, padded_feats)
    dist.all_gather(all_idx, padded_idx)
    stacked_idx = torch.cat(all_idx)
    keep = stacked_idx >= 0
    out = features.new_zeros(total, dim)
    filled = torch.zeros(total, dtype=torch.bool, device=features.device)
    out[stacked_idx[keep]] = torch.cat(all_feats)[keep]
    filled[stacked_idx[keep]] = True
    return out, filled
