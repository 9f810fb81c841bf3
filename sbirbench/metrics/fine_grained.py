"""Fine-grained zero-shot retrieval (FG-ZS-SBIR, docs/protocols.md section 2): where does
each sketch's own photo rank?

A sketch ``n02691156_10151-3.png`` was drawn from the photo ``n02691156_10151.jpg`` of
the same class folder: the photo's stem is the sketch's without its last ``-<k>``.
Each query is ranked against its gallery (``class``: the photos of its true photo's
folder, i.e. its class in that photo set; ``all``: every test photo). With ``h`` photos
scoring strictly higher than the true one and ``t`` others tied with it, the true photo's
position under a random order of ties is uniform on ``h+1 .. h+t+1``, so

    acc@K = P(position <= K) = clip((K - h) / (t + 1), 0, 1),   rank = h + 1 + t / 2,

both averaged over the queries: the neutral tie rule of the retrieval metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

GALLERIES = ("class", "all")
PAIRING = "photo stem = sketch stem without its last '-<k>', same class, same data set"


def photo_key(path: str, label: int) -> tuple[int, str]:
    """The (class, stem) a photo is found by."""
    return label, os.path.splitext(os.path.basename(path))[0]


def sketch_key(path: str, label: int) -> tuple[int, str]:
    """The (class, stem) of the photo a sketch was drawn from."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return label, stem.rsplit("-", 1)[0]


def pair(
    sketches: Sequence[tuple[str, int]], photos: Sequence[tuple[str, int]], gallery: str
) -> tuple[list[int], list[int], list[int]]:
    """For each sketch with a photo: its index, its photo's index, and the photo's gallery
    group; and the photos' groups (``class``: one group per class and folder)."""
    where: dict[tuple[int, str], list[int]] = {}
    for i, (p, c) in enumerate(photos):
        where.setdefault(photo_key(p, c), []).append(i)
    folders: dict[tuple[int, str], int] = {}
    groups = [
        folders.setdefault((c, os.path.dirname(p)), len(folders)) if gallery == "class" else 0
        for p, c in photos
    ]
    queries, truths = [], []
    for i, (path, label) in enumerate(sketches):
        candidates = where.get(sketch_key(path, label))
        if candidates:
            queries.append(i)
            truths.append(_closest(path, candidates, photos))
    return queries, truths, groups


def _closest(sketch: str, candidates: list[int], photos: Sequence[tuple[str, int]]) -> int:
    """Of several photos with the sketch's stem (a photo set and its extension, say),
    the one that shares the most folder names with the sketch (``tx_000000000000``),
    then the first listed."""
    if len(candidates) == 1:
        return candidates[0]
    folders = set(os.path.dirname(sketch).replace("\\", "/").split("/"))
    return max(
        candidates,
        key=lambda j: (
            len(folders & set(os.path.dirname(photos[j][0]).replace("\\", "/").split("/"))),
            -j,
        ),
    )


def true_photo_ranks(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    truths: torch.Tensor,
    query_groups: torch.Tensor,
    gallery_groups: torch.Tensor,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(higher, tied)``: per query, the photos of its group scoring strictly above its
    true photo and the other photos tied with it (cosine similarity)."""
    q, g = F.normalize(queries.float(), dim=-1), F.normalize(gallery.float(), dim=-1)
    higher, tied = [], []
    for start in range(0, len(q), chunk):
        sim = q[start : start + chunk] @ g.T
        rows = torch.arange(sim.shape[0])
        true = sim[rows, truths[start : start + chunk]][:, None]
        same = query_groups[start : start + chunk, None] == gallery_groups[None, :]
        higher.append(((sim > true) & same).sum(1))
        tied.append(((sim == true) & same).sum(1) - 1)  # not the true photo itself
    return torch.cat(higher), torch.cat(tied)


def accuracy_at(higher: torch.Tensor, tied: torch.Tensor, k: int) -> torch.Tensor:
    """Per query, the probability that the true photo is in the top ``k``."""
    return ((k - higher.double()) / (tied.double() + 1)).clamp(0, 1)


def fg_metrics(
    higher: torch.Tensor, tied: torch.Tensor, sizes: torch.Tensor, ks: Sequence[int]
) -> dict[str, Any]:
    """acc@K per K, the mean rank, and their chance levels (a random order of each
    query's gallery of ``sizes`` photos: acc@K = min(K, n) / n, rank = (n + 1) / 2)."""
    n = sizes.double()
    return {
        "metrics": {f"acc@{k}": float(accuracy_at(higher, tied, k).mean()) for k in ks},
        "chance": {f"acc@{k}": float((n.clamp(max=k) / n).mean()) for k in ks},
        "mean_rank": float((higher.double() + 1 + tied.double() / 2).mean()),
        "chance_mean_rank": float(((n + 1) / 2).mean()),
    }
