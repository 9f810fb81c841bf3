"""Evaluation: embed the unseen-class sketches (queries) and photos (gallery), rank.

Every rank embeds a strided shard of each set (no padding), and the features are
gathered by dataset index; an unreadable image is dropped and counted. Features can be
cached on disk, keyed by (model hash, data set, split, modality, transform, item list),
so evaluating the same checkpoint again costs no forward pass.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from sbirbench import atomic
from sbirbench.data import ImageItems, collate, shard
from sbirbench.distributed import (
    Context,
    agree,
    broadcast_object,
    gather_by_index,
    max_over_ranks,
)
from sbirbench.errors import UserError
from sbirbench.hashing import itq_codes
from sbirbench.interfaces import Method, Modality, SBIRDataset
from sbirbench.metrics import retrieval_metrics
from sbirbench.paths import cache_dir
from sbirbench.stats import chance_level
from sbirbench.transforms import describe, eval_transform


@dataclass
class Embedded:
    """Features of one modality's test items (unreadable items removed)."""

    features: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    unreadable: list[str]


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32" or (device.type != "cuda" and precision == "fp16"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _cache_path(key: str | None, dataset: SBIRDataset, modality: str, transform: str,
                refs: list, numerics: str) -> Any:
    if key is None:
        return None
    digest = hashlib.sha256()
    for part in (key, dataset.name, dataset.split, modality, transform, numerics,
                 str(len(refs)), *map(str, refs)):
        digest.update(part.encode())
        digest.update(b"\0")
    return cache_dir("features") / f"{digest.hexdigest()[:32]}.pt"


def embed(method: Method, dataset: SBIRDataset, modality: Modality, *, context: Context,
          batch_size: int = 64, workers: int = 0, precision: str = "fp32",
          cache_key: str | None = None) -> Embedded:
    """Embed every test item of ``modality`` (all ranks take part; all get the result)."""
    items = list(dataset.items("test", modality))
    if not items:
        raise UserError(f"data set {dataset.name} has no test {modality}s")
    transform = eval_transform(method.input_spec())
    numerics = f"{precision} on {context.device.type}"
    path = _cache_path(cache_key, dataset, modality, describe(transform), [r for r, _ in items],
                       numerics)
    cached = None
    # Rank 0 decides; every rank must see the file, or all of them compute the features.
    hit = broadcast_object(path is not None and path.is_file() if context.main else None,
                           context)
    if hit and agree(path.is_file(), context):
        cached = torch.load(path, map_location="cpu", weights_only=True)
    if cached is None:
        cached = _forward(method, dataset, items, modality, transform, context, batch_size,
                          workers, precision)
        if path is not None and context.main:
            atomic.torch_save(path, cached)
    labels = torch.tensor([label for _, label in items])
    keep = cached["filled"]
    indices = torch.arange(len(items))[keep]
    return Embedded(cached["features"][keep], labels[keep], indices, cached["unreadable"])


def _forward(method: Method, dataset: SBIRDataset, items: list, modality: Modality, transform,
             context: Context, batch_size: int, workers: int, precision: str) -> dict[str, Any]:
    data = ImageItems(dataset, items, modality, transform, replace=False)
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch_size, sampler=shard(len(items), context.rank, context.world),
        num_workers=workers, collate_fn=collate, pin_memory=context.device.type == "cuda")
    model = method.model()
    was_training = model.training
    model.eval()
    features, indices, unreadable = [], [], []
    with torch.inference_mode(), autocast_context(context.device, precision):
        for batch in loader:
            unreadable.extend(batch.unreadable)
            if len(batch.indices) == 0:
                continue
            out = method.embed(batch.images.to(context.device, non_blocking=True), modality)
            features.append(out.float())
            indices.append(batch.indices.to(context.device))
    model.train(was_training)
    # A rank with nothing to embed (a small or unreadable shard) still joins the gather.
    dim = max_over_ranks(features[0].shape[1] if features else 0, context)
    if dim == 0:
        raise UserError(f"no readable test {modality} in data set {dataset.name}")
    local = torch.cat(features) if features else torch.zeros(0, dim, device=context.device)
    local_idx = (torch.cat(indices) if indices
                 else torch.zeros(0, dtype=torch.long, device=context.device))
    full, filled = gather_by_index(local, local_idx, len(items), context)
    if context.distributed:
        unreadable = [path for part in _all_gather_objects(unreadable, context) for path in part]
    return {"features": full.cpu(), "filled": filled.cpu(), "unreadable": sorted(set(unreadable))}


def _all_gather_objects(value: Any, context: Context) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * context.world
    dist.all_gather_object(out, value)
    return out


def per_query_record(dataset: SBIRDataset, queries: Embedded, values: dict[str, Any],
                     metric: str) -> dict[str, Any]:
    """Each query's value of the headline metric, by query file (for paired tests between
    runs; NaN, stored as None, where a query has no relevant photo)."""
    items = dataset.items("test", "sketch")
    refs = [str(items[int(i)][0]) for i in queries.indices]
    root = str(dataset.describe().get("root") or "")
    return {"metric": metric, "queries": [r.removeprefix(root).lstrip("/") for r in refs],
            "values": [None if v != v else round(float(v), 7) for v in values[metric]]}


def evaluate(method: Method, dataset: SBIRDataset, *, context: Context, metrics: tuple[str, ...],
             ap: str = "interpolated", ties: str = "shared", hash_bits: int | None = None,
             batch_size: int = 64,
             workers: int = 0, precision: str = "fp32", cache_key: str | None = None,
             ) -> dict[str, Any]:
    """Metrics of ``method`` on the unseen classes of ``dataset`` (every rank gets them)."""
    kw = dict(context=context, batch_size=batch_size, workers=workers, precision=precision,
              cache_key=cache_key)
    queries = embed(method, dataset, "sketch", **kw)
    gallery = embed(method, dataset, "photo", **kw)
    result = retrieval_metrics(queries.features, queries.labels, gallery.features,
                               gallery.labels, metrics=metrics, ap=ap, ties=ties,
                               device=context.device, per_class=True, per_query=True)
    names = dataset.unseen_classes
    primary = next((m for m in metrics if m.startswith("map@")), metrics[0])
    out = {
        "metrics": {m: result[m] for m in metrics},
        "per_class_ap": {names[c]: v for c, v in result["per_class"][primary].items()},
        "per_class_metric": primary,
        "conventions": result["conventions"],
        "queries": result["queries"],
        "queries_without_positives": result["queries_without_positives"],
        "gallery": result["gallery"],
        "unreadable_images": len(queries.unreadable) + len(gallery.unreadable),
        "unreadable_examples": (queries.unreadable + gallery.unreadable)[:10],
        "inputs": method.input_spec().as_dict(),
        "chance": broadcast_object(chance_level(queries.labels.numpy(), gallery.labels.numpy(),
                                                metrics, ap=ap) if context.main else None,
                                   context),
        "per_query": per_query_record(dataset, queries, result["per_query"], primary),
    }
    if hash_bits:
        codes = broadcast_object(itq_codes(queries.features, gallery.features, hash_bits)
                                 if context.main else None, context)
        hashed = retrieval_metrics(torch.from_numpy(codes[0]), queries.labels,
                                   torch.from_numpy(codes[1]), gallery.labels, metrics=metrics,
                                   ap=ap, ties=ties, similarity="hamming",
                                   device=context.device)
        out["hashed_metrics"] = {m: hashed[m] for m in metrics}
        out["hash"] = {"bits": hash_bits, "method": "PCA + ITQ (50 iterations, reference "
                       "update), fitted on the raw query features, each set centred"}
    return out
