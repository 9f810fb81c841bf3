"""Where the metric work runs: CPU worker threads, memory budgets, and the exact
reduction of per-query values across ``torch.distributed`` ranks."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import torch

#: Queries per block on the CPU, where each worker thread takes a block from matrix
#: product to metrics (perf/metrics_speed.py --chunk-sizes: 192-256 were fastest).
CPU_MAX_CHUNK = 256


def cpus() -> int:
    """CPUs this process may use (the container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@cache
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(8, cpus()))


_THREADS_LOCK = threading.Lock()


@contextlib.contextmanager
def single_threaded_libraries() -> Iterator[None]:
    """Our worker threads split the queries; BLAS and torch inside them must not fan out
    again. threadpoolctl is the only portable way to limit numpy's BLAS threads at run
    time (their busy-waiting after each product otherwise slows the sorts by ~15%). The
    thread settings are process-wide, so concurrent calls take turns."""
    from threadpoolctl import threadpool_limits

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
        finally:
            torch.set_num_threads(before)


def auto_chunk(num_gallery: int, max_relevant: int, dev: torch.device) -> int:
    """Queries per block: the score rows, their sorted copy and the stable-rank path's
    int64 indices fit a memory budget (on the CPU shared by the concurrent workers)."""
    per_row = num_gallery * 32 + max_relevant * 64
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return max(1, int(free * 0.4) // per_row)
    budget = min(_available_memory() // 4, 2 << 30) // pool()._max_workers
    return max(1, min(CPU_MAX_CHUNK, budget // per_row))


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def dist_rank_world(enabled: bool) -> tuple[int, int]:
    import torch.distributed as dist

    if enabled and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_rows(
    values: dict[str, np.ndarray], lo: int, hi: int, dev: torch.device
) -> dict[str, np.ndarray]:
    """Every rank filled rows [lo, hi); sum zero-filled copies so all ranks hold all rows."""
    import torch.distributed as dist

    names = list(values)
    stacked = np.zeros((len(names), len(next(iter(values.values())))))
    for i, name in enumerate(names):
        stacked[i, lo:hi] = values[name][lo:hi]
    backend_device = dev if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.from_numpy(stacked).to(backend_device)
    dist.all_reduce(tensor)
    reduced = tensor.cpu().numpy()
    return {name: reduced[i].copy() for i, name in enumerate(names)}
