"""Embedding the test set: the unseen-class sketches (queries) and photos (gallery).

Every rank embeds a strided shard of each set (no padding), and the features are
gathered by dataset index, as DINO's kNN evaluation does; an unreadable image is dropped
and counted. Features can be cached on disk, keyed by (model hash, data set, split,
modality, transform, item list, numerics), so evaluating the same checkpoint again costs
no forward pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

import torch

from sbirbench.data.items import ImageItems, collate, shard
from sbirbench.data.transforms import describe, eval_transform
from sbirbench.errors import UserError
from sbirbench.interfaces import Method, Modality, Reranker, SBIRDataset
from sbirbench.modes import evaluating
from sbirbench.runtime import atomic
from sbirbench.runtime.devices import autocast_context
from sbirbench.runtime.distributed import (
    Context,
    agree,
    broadcast_object,
    gather_by_index,
    max_over_ranks,
)
from sbirbench.runtime.paths import cache_dir


@dataclass
class Embedded:
    """Features of one modality's test items (unreadable items removed)."""

    features: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    unreadable: list[str]


def _cache_path(
    key: str | None, dataset: SBIRDataset, modality: str, transform: str, refs: list, numerics: str
) -> Any:
    if key is None:
        return None
    digest = hashlib.sha256()
    for part in (
        key,
        dataset.name,
        dataset.split,
        modality,
        transform,
        numerics,
        str(len(refs)),
        *map(str, refs),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return cache_dir("features") / f"{digest.hexdigest()[:32]}.pt"


def embed(
    method: Method,
    dataset: SBIRDataset,
    modality: Modality,
    *,
    context: Context,
    batch_size: int = 64,
    workers: int = 0,
    precision: str = "fp32",
    cache_key: str | None = None,
    tokens: bool = False,
) -> Embedded:
    """Embed every test item of ``modality`` (all ranks take part; all get the result).
    With ``tokens``, the features are the method's :meth:`~sbirbench.interfaces.Reranker.
    pair_tokens` ``(N, T, D)``, kept in float16 (a second retrieval stage reads them)."""
    items = list(dataset.items("test", modality))
    if not items:
        raise UserError(f"data set {dataset.name} has no test {modality}s")
    transform = eval_transform(method.input_spec())
    numerics = f"{precision} on {context.device.type}" + (", pair tokens" if tokens else "")
    path = _cache_path(
        cache_key, dataset, modality, describe(transform), [r for r, _ in items], numerics
    )
    cached = None
    # Rank 0 decides; every rank must see the file, or all of them compute the features.
    hit = broadcast_object(path is not None and path.is_file() if context.main else None, context)
    if hit and agree(path.is_file(), context):
        cached = torch.load(path, map_location="cpu", weights_only=True)
    if cached is None:
        cached = _forward(
            method,
            dataset,
            items,
            modality,
            transform,
            context,
            batch_size,
            workers,
            precision,
            tokens,
        )
        if path is not None and context.main:
            atomic.torch_save(path, cached)
    labels = torch.tensor([label for _, label in items])
    keep = cached["filled"]
    indices = torch.arange(len(items))[keep]
    features = cached["features"][keep]
    return Embedded(
        features.view(len(features), *cached.get("shape", features.shape[1:])),
        labels[keep],
        indices,
        cached["unreadable"],
    )


def _forward(
    method: Method,
    dataset: SBIRDataset,
    items: list,
    modality: Modality,
    transform,
    context: Context,
    batch_size: int,
    workers: int,
    precision: str,
    tokens: bool = False,
) -> dict[str, Any]:
    data = ImageItems(dataset, items, modality, transform, replace=False)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=batch_size,
        sampler=shard(len(items), context.rank, context.world),
        num_workers=workers,
        collate_fn=collate,
        pin_memory=context.device.type == "cuda",
    )
    encode = cast(Reranker, method).pair_tokens if tokens else method.embed
    features, indices, unreadable = [], [], []
    shape: tuple[int, ...] = ()
    with (
        evaluating(method.model()),
        torch.inference_mode(),
        autocast_context(context.device, precision),
    ):
        for batch in loader:
            unreadable.extend(batch.unreadable)
            if len(batch.indices) == 0:
                continue
            encoded = encode(batch.images.to(context.device, non_blocking=True), modality)
            shape = tuple(encoded.shape[1:])
            # Token stacks are flattened to rows for the gather and halved in size; one
            # process keeps them on the host (they can outgrow an accelerator).
            if tokens:
                encoded = encoded.flatten(1).half()
                features.append(encoded if context.distributed else encoded.cpu())
            else:
                features.append(encoded.float())
            indices.append(batch.indices.to(features[-1].device))
    # A rank with nothing to embed (a small or unreadable shard) still joins the gather.
    dim = max_over_ranks(features[0].shape[1] if features else 0, context)
    if dim == 0:
        raise UserError(f"no readable test {modality} in data set {dataset.name}")
    dtype = torch.float16 if tokens else torch.float32
    local = (
        torch.cat(features) if features else torch.zeros(0, dim, dtype=dtype, device=context.device)
    )
    local_idx = (
        torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long, device=context.device)
    )
    full, filled = gather_by_index(local, local_idx, len(items), context)
    if context.distributed:
        unreadable = [path for part in _all_gather_objects(unreadable, context) for path in part]
    out: dict[str, Any] = {
        "features": full.cpu(),
        "filled": filled.cpu(),
        "unreadable": sorted(set(unreadable)),
    }
    if tokens:
        out["shape"] = list(_agreed_shape(shape, context))
    return out


def _agreed_shape(shape: tuple[int, ...], context: Context) -> tuple[int, ...]:
    """The per-image token shape, from a rank that embedded something."""
    if not context.distributed:
        return shape
    return next(s for s in _all_gather_objects(shape, context) if s)


def _all_gather_objects(value: Any, context: Context) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * context.world
    dist.all_gather_object(out, value)
    return out
