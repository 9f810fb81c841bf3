"""Step 6 under the fine-grained protocol: rank each unseen sketch's own photo.

The same embeddings as zero-shot evaluation (:mod:`.embedding`); the ranking and the
metrics are :mod:`sbirbench.metrics.fine_grained`'s. Every rank computes the same result.
"""

from __future__ import annotations

from typing import Any

import torch

from sbirbench.errors import UserError
from sbirbench.interfaces import Method, SBIRDataset
from sbirbench.metrics.fine_grained import PAIRING, accuracy_at, fg_metrics, pair, true_photo_ranks
from sbirbench.runtime.distributed import Context
from sbirbench.runtime.paths import relative_to_root

from .embedding import embed
from .evaluation import Evaluation, evaluate
from .resolve import Protocol

TIES = "expected position of the true photo under a random order of tied photos"


def evaluate_protocol(
    method: Method, dataset: SBIRDataset, protocol: Protocol, *, context: Context, **kw: Any
) -> Evaluation:
    """The evaluation a protocol asks for: fine-grained, or retrieval (zs and gzs)."""
    if protocol.kind == "fg":
        return evaluate_fine_grained(method, dataset, protocol, context=context, **kw)
    return evaluate(method, dataset, protocol, context=context, **kw)


def evaluate_fine_grained(
    method: Method, dataset: SBIRDataset, protocol: Protocol, *, context: Context, **kw: Any
) -> Evaluation:
    """acc@K of ``method`` on the unseen classes of ``dataset`` (docs/protocols.md)."""
    sketch_items, photo_items = dataset.items("test", "sketch"), dataset.items("test", "photo")
    queries = embed(method, dataset, "sketch", context=context, **kw)
    gallery = embed(method, dataset, "photo", context=context, **kw)
    sketches = [
        (str(sketch_items[int(i)][0]), int(sketch_items[int(i)][1])) for i in queries.indices
    ]
    photos = [(str(photo_items[int(i)][0]), int(photo_items[int(i)][1])) for i in gallery.indices]
    kept, truths, groups = pair(sketches, photos, protocol.fg_gallery)
    if not kept:
        raise UserError(
            "no unseen sketch has its photo among the test photos (pairing: "
            f"{PAIRING}); check that the photos of the sketches' data set are present"
        )
    photo_groups, true = torch.tensor(groups), torch.tensor(truths)
    query_groups = photo_groups[true]
    higher, tied = true_photo_ranks(
        queries.features[kept], gallery.features, true, query_groups, photo_groups
    )
    sizes = torch.bincount(photo_groups)[query_groups]
    ks = [int(m.split("@")[1]) for m in protocol.metrics]
    measured = fg_metrics(higher, tied, sizes, ks)
    first = accuracy_at(higher, tied, ks[0])
    labels = torch.tensor([sketches[i][1] for i in kept])
    names = dataset.unseen_classes
    root = str(dataset.describe().get("root") or "")
    return Evaluation(
        metrics=measured["metrics"],
        per_class_ap={
            names[int(c)]: float(first[labels == c].mean()) for c in torch.unique(labels)
        },
        per_class_metric=protocol.metrics[0],
        conventions={
            "similarity": "cosine",
            "ties": TIES,
            "acc@K": "share of queries whose own photo is among the top K of the query's gallery",
            "pairing": PAIRING,
            "gallery": protocol.fg_gallery,
        },
        queries=len(kept),
        queries_without_positives=len(sketches) - len(kept),
        gallery=len(photos),
        unreadable=queries.unreadable + gallery.unreadable,
        inputs=method.input_spec().as_dict(),
        chance=measured["chance"],
        per_query={
            "metric": protocol.metrics[0],
            "queries": [relative_to_root(sketches[i][0], root) for i in kept],
            "values": [round(float(v), 7) for v in first],
        },
        fine_grained={
            "gallery": protocol.fg_gallery,
            "gallery_size_mean": float(sizes.double().mean()),
            "sketches_without_photo": len(sketches) - len(kept),
            "mean_rank": measured["mean_rank"],
            "chance_mean_rank": measured["chance_mean_rank"],
        },
    )
