"""Step 6 of a run: evaluate a model on the unseen classes under a protocol.

``evaluate(method, dataset, protocol)`` embeds the queries and the gallery
(:mod:`.embedding`), ranks with :func:`sbirbench.metrics.retrieval_metrics`, re-ranks
the top k with a Reranker method's relation (:mod:`.rerank`), optionally hashes to
binary codes, and returns a typed :class:`Evaluation`: the metrics, per-class
and per-query values, the conventions used, the input spec, and the chance level of this
test set. Every rank takes part and every rank gets the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sbirbench.hashing import itq_codes
from sbirbench.interfaces import Method, Reranker, SBIRDataset
from sbirbench.metrics import retrieval_metrics
from sbirbench.protocol.gzs import GZSView
from sbirbench.results.stats import chance_level
from sbirbench.runtime.distributed import Context, broadcast_object
from sbirbench.runtime.paths import relative_to_root

from .embedding import Embedded, embed
from .rerank import rerank
from .resolve import Protocol

HASH_METHOD = (
    "PCA + ITQ (50 iterations, reference update), fitted on the raw query "
    "features, each set centred"
)


@dataclass
class Evaluation:
    """What an evaluation measured (the parts of result.json it owns), and the per-query
    values of the headline metric (written beside the result)."""

    metrics: dict[str, float]
    per_class_ap: dict[str, float]
    per_class_metric: str
    conventions: dict[str, Any]
    queries: int
    queries_without_positives: int
    gallery: int
    unreadable: list[str]
    inputs: dict[str, Any]
    chance: dict[str, float]
    per_query: dict[str, Any]
    hashed_metrics: dict[str, float] | None = None
    hash: dict[str, Any] | None = None
    gzs: dict[str, Any] | None = None
    fine_grained: dict[str, Any] | None = None
    reranked_metrics: dict[str, float] | None = None
    rerank: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """The result.json fields of this evaluation."""
        out: dict[str, Any] = {
            "metrics": self.metrics,
            "per_class_ap": self.per_class_ap,
            "per_class_metric": self.per_class_metric,
            "conventions": self.conventions,
            "queries": self.queries,
            "queries_without_positives": self.queries_without_positives,
            "gallery": self.gallery,
            "unreadable_images": len(self.unreadable),
            "unreadable_examples": self.unreadable[:10],
            "inputs": self.inputs,
            "chance": self.chance,
        }
        if self.hashed_metrics is not None:
            out["hashed_metrics"] = self.hashed_metrics
            out["hash"] = self.hash
        if self.reranked_metrics is not None:
            out["reranked_metrics"] = self.reranked_metrics
            out["rerank"] = self.rerank
        if self.gzs is not None:
            out["gzs"] = self.gzs
        if self.fine_grained is not None:
            out["fine_grained"] = self.fine_grained
        return out


def headline(metrics: tuple[str, ...]) -> str:
    """The metric per-class and per-query values are kept for: the first mAP."""
    return next((m for m in metrics if m.startswith("map@")), metrics[0])


def evaluate(
    method: Method,
    dataset: SBIRDataset,
    protocol: Protocol,
    *,
    context: Context,
    batch_size: int = 64,
    workers: int = 0,
    precision: str = "fp32",
    cache_key: str | None = None,
) -> Evaluation:
    """Metrics of ``method`` on the unseen classes of ``dataset`` (every rank gets them)."""
    kw: dict[str, Any] = dict(
        context=context,
        batch_size=batch_size,
        workers=workers,
        precision=precision,
        cache_key=cache_key,
    )
    queries = embed(method, dataset, "sketch", **kw)
    gallery = embed(method, dataset, "photo", **kw)
    metrics = protocol.metrics

    def rank(**options: Any) -> dict[str, Any]:
        """The protocol's metrics of the cosine ranking (with ``options``)."""
        return retrieval_metrics(
            queries.features,
            queries.labels,
            gallery.features,
            gallery.labels,
            metrics=metrics,
            ap=protocol.ap,
            ties=protocol.ties,
            device=context.device,
            per_query=True,
            **options,
        )

    result = rank(per_class=True)
    primary = headline(metrics)
    names = dataset.unseen_classes
    chance = broadcast_object(
        chance_level(queries.labels.numpy(), gallery.labels.numpy(), metrics, ap=protocol.ap)
        if context.main
        else None,
        context,
    )
    evaluation = Evaluation(
        metrics={m: result[m] for m in metrics},
        per_class_ap={names[c]: v for c, v in result["per_class"][primary].items()},
        per_class_metric=primary,
        conventions=result["conventions"],
        queries=result["queries"],
        queries_without_positives=result["queries_without_positives"],
        gallery=result["gallery"],
        unreadable=queries.unreadable + gallery.unreadable,
        inputs=method.input_spec().as_dict(),
        chance=chance,
        per_query=per_query_record(dataset, queries, result["per_query"], primary),
    )
    if isinstance(dataset, GZSView):
        evaluation.gzs = gzs_breakdown(
            dataset, queries, gallery, {m: result["per_query"][m] for m in metrics}
        )
    if isinstance(method, Reranker):
        stage2 = rerank(method, dataset, queries, gallery, **kw)
        again = rank(score_overrides=(stage2.columns, stage2.scores))
        evaluation.reranked_metrics = {m: again[m] for m in metrics}
        evaluation.rerank = stage2.info
        # The second ranking's per-query values, beside the first's (paired tests).
        evaluation.per_query["reranked_values"] = rounded(again["per_query"][primary])
    if protocol.hash_bits:
        codes = broadcast_object(
            itq_codes(queries.features, gallery.features, protocol.hash_bits)
            if context.main
            else None,
            context,
        )
        hashed = retrieval_metrics(
            torch.from_numpy(codes[0]),
            queries.labels,
            torch.from_numpy(codes[1]),
            gallery.labels,
            metrics=metrics,
            ap=protocol.ap,
            ties=protocol.ties,
            similarity="hamming",
            device=context.device,
        )
        evaluation.hashed_metrics = {m: hashed[m] for m in metrics}
        evaluation.hash = {"bits": protocol.hash_bits, "method": HASH_METHOD}
    return evaluation


def gzs_breakdown(
    dataset: GZSView, queries: Embedded, gallery: Embedded, per_query: dict[str, Any]
) -> dict[str, Any]:
    """GZS metrics of the unseen queries and of the held-out seen queries, each against the
    whole mixed gallery (the means of the evaluation's own per-query values over each
    part), and H, the harmonic mean of the two (per metric)."""
    seen = (queries.labels >= dataset.unseen_count).numpy()
    out: dict[str, Any] = {}
    for part, mask in (("unseen", ~seen), ("seen", seen)):
        values = {m: np.asarray(v, dtype=np.float64)[mask] for m, v in per_query.items()}
        counted = {m: v[~np.isnan(v)] for m, v in values.items()}
        out[part] = (
            {m: float(v.mean()) for m, v in counted.items()}
            if all(len(v) for v in counted.values())
            else None
        )
    a, b = out["unseen"], out["seen"]
    out["h"] = (
        {m: 2 * a[m] * b[m] / (a[m] + b[m]) if a[m] + b[m] > 0 else 0.0 for m in a}
        if a and b
        else None
    )
    out["queries"] = {"unseen": int((~seen).sum()), "seen": int(seen.sum())}
    out["gallery"] = {
        "unseen": int((gallery.labels < dataset.unseen_count).sum()),
        "seen": int((gallery.labels >= dataset.unseen_count).sum()),
    }
    return out


def per_query_record(
    dataset: SBIRDataset, queries: Embedded, values: dict[str, Any], metric: str
) -> dict[str, Any]:
    """Each query's value of the headline metric, by query file relative to the data
    root (for paired tests between runs; None where a query has no relevant photo)."""
    items = dataset.items("test", "sketch")
    refs = [str(items[int(i)][0]) for i in queries.indices]
    root = str(dataset.describe().get("root") or "")
    return {
        "metric": metric,
        "queries": [relative_to_root(r, root) for r in refs],
        "values": rounded(values[metric]),
    }


def rounded(values: Any) -> list[float | None]:
    """Per-query values as stored: 7 decimals, None where a query has no value (NaN)."""
    return [None if v != v else round(float(v), 7) for v in values]
