"""The second retrieval stage of a :class:`~sbirbench.interfaces.Reranker` method.

Stage 1 ranks the gallery by the cosine of the embeddings. Stage 2 takes each query's
top k photos of that ranking and scores every (query, candidate) pair with the method's
relation; a re-ranked candidate's score becomes its relation min-max scaled into [2, 3]
per query, above every cosine, so the top k are re-ordered by relation and the rest keep
their stage-1 order.
The result is a pair of ``(Q, k)`` arrays for
:func:`sbirbench.metrics.retrieval_metrics`'s ``score_overrides``. Ranks share the
queries and gather the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sbirbench.interfaces import Method, Reranker, SBIRDataset
from sbirbench.modes import evaluating
from sbirbench.runtime.devices import autocast_context
from sbirbench.runtime.distributed import Context, gather_by_index

from .embedding import Embedded, embed

#: Stage-1 rows scored at once, and pairs given to the relation at once.
QUERY_BLOCK = 256
PAIR_BLOCK = 512
#: A re-ranked candidate scores in [OFFSET, OFFSET + 1]: above any cosine in [-1, 1].
OFFSET = 2.0


def rescale(relation: torch.Tensor) -> torch.Tensor:
    """Each row's relations mapped to [OFFSET, OFFSET + 1] by min-max scaling in float64,
    then float32: monotonic, ties kept, and no saturation whatever the relation's range
    (a sigmoid of logits beyond +-15 would round to equal float32 scores)."""
    low = relation.amin(1, keepdim=True)
    span = (relation.amax(1, keepdim=True) - low).clamp_min(torch.finfo(torch.float64).tiny)
    return (OFFSET + (relation - low) / span).float()


@dataclass
class Reranked:
    """Each query's re-ranked gallery columns and their new scores, and what was done."""

    columns: torch.Tensor
    scores: torch.Tensor
    info: dict[str, Any]


def rerank(
    method: Method,
    dataset: SBIRDataset,
    queries: Embedded,
    gallery: Embedded,
    *,
    context: Context,
    precision: str = "fp32",
    **embed_options: Any,
) -> Reranked:
    """Stage 2 for ``method`` (a Reranker) over the stage-1 features of ``queries`` and
    ``gallery`` (every rank takes part and gets the result)."""
    assert isinstance(method, Reranker), "rerank() needs a Reranker method"
    options = dict(context=context, precision=precision, tokens=True, **embed_options)
    query_tokens = embed(method, dataset, "sketch", **options)
    gallery_tokens = embed(method, dataset, "photo", **options)
    wanted = method.rerank_k()
    k = len(gallery.features) if wanted is None else min(int(wanted), len(gallery.features))
    dev = context.device
    q = F.normalize(queries.features.float(), dim=1).to(dev)
    g = F.normalize(gallery.features.float(), dim=1).to(dev)
    num_q = len(q)
    if not (
        torch.equal(query_tokens.indices, queries.indices)
        and torch.equal(gallery_tokens.indices, gallery.indices)
    ):
        raise RuntimeError("the token pass kept other test images than the embedding pass")
    lo, hi = num_q * context.rank // context.world, num_q * (context.rank + 1) // context.world
    columns, scores = [], []
    with evaluating(method.model()), torch.inference_mode():
        for start in range(lo, hi, QUERY_BLOCK):
            stop = min(start + QUERY_BLOCK, hi)
            # Candidates in float32, as stage 1 ranks them; only the relation autocasts.
            top = (q[start:stop] @ g.T).topk(k, dim=1).indices  # (rows, k)
            rows = torch.arange(start, stop, device=dev)[:, None].expand_as(top).reshape(-1)
            with autocast_context(dev, precision):
                relation = _pair_scores(
                    method,
                    query_tokens.features,
                    gallery_tokens.features,
                    rows,
                    top.reshape(-1),
                    dev,
                )
            columns.append(top.cpu())
            scores.append(rescale(relation.view_as(top).double()).cpu())
    local_cols = torch.cat(columns) if columns else torch.zeros(0, k, dtype=torch.long)
    local_scores = torch.cat(scores) if scores else torch.zeros(0, k)
    index = torch.arange(lo, hi)
    if context.distributed:  # collectives need the device (NCCL); each rank's share only
        local_cols, local_scores, index = local_cols.to(dev), local_scores.to(dev), index.to(dev)
    all_cols, _ = gather_by_index(local_cols, index, num_q, context)
    all_scores, _ = gather_by_index(local_scores, index, num_q, context)
    return Reranked(
        all_cols.cpu(),
        all_scores.cpu(),
        {
            "k": "all" if wanted is None else k,
            "stage1": "cosine of the embeddings ranks the whole gallery",
            "stage2": (
                "the top k of each query re-ordered by the method's relation score of the "
                "(sketch, photo) pair; the rest keep their stage-1 order"
            ),
            "pairs": num_q * k,
        },
    )


def _pair_scores(
    method: Reranker,
    query_tokens: torch.Tensor,
    gallery_tokens: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    dev: torch.device,
) -> torch.Tensor:
    """The relation of each (query row, gallery column) pair, in blocks of PAIR_BLOCK."""
    out = []
    for start in range(0, len(rows), PAIR_BLOCK):
        r, c = rows[start : start + PAIR_BLOCK].cpu(), cols[start : start + PAIR_BLOCK].cpu()
        sketch = query_tokens[r].to(dev).float()
        photo = gallery_tokens[c].to(dev).float()
        out.append(method.relation(sketch, photo).float().reshape(-1))
    return torch.cat(out) if out else torch.zeros(0, device=dev)
