"""ZSE-SBIR's modules and loss terms (docs/methods/zse-sbir.md): the cross-attention
layer, the token-level relation network, and the two losses."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class PostNorm(nn.Module):
    """The release's layer norm: ``a (x - mean) / (std + eps) + b`` with the unbiased
    standard deviation and eps outside the root (not ``nn.LayerNorm``'s)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.weight * (x - mean) / (std + self.eps) + self.bias


class CrossAttention(nn.Module):
    """One post-norm cross-attention layer for one modality.

    ``swap="key"`` (the release): ``x1 = LN(x + MHA(Q=x, K=other, V=x))``; ``"query"``
    (the paper's figure): ``MHA(Q=other, K=x, V=x)``. Then ``LN(x1 + FFN(x1))``, FFN
    ``dim -> ffn_dim -> dim`` with ReLU. Both need equally long token sequences.
    """

    def __init__(
        self, dim: int, heads: int, ffn_dim: int, dropout: float, swap: Literal["key", "query"]
    ) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim)
        )
        self.norm1, self.norm2 = PostNorm(dim), PostNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.swap = swap

    def forward(self, own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        query, key = (own, other) if self.swap == "key" else (other, own)
        attended = self.attention(query, key, own, need_weights=False)[0]
        x = self.norm1(own + self.drop1(attended))
        return self.norm2(x + self.drop2(self.ffn(x)))


class RelationNetwork(nn.Module):
    """Token-level relation: patch tokens to a grid, a 2x2 stride-2 convolution to
    ``cells`` vectors per image, the ``cells x cells`` cosine matrix of a sketch's and a
    photo's vectors (flattened sketch-major), an MLP ``c^2 -> 7c -> c -> 1`` (ReLU,
    dropout) and a sigmoid: one score in (0, 1) per pair.

    ``layout="release"`` reads the ``(N, D)`` token block as ``(D, side, side)`` the way
    the release's ``view`` does (tokens and channels scrambled, a fixed permutation the
    convolution learns around); ``"grid"`` moves the channel axis first as intended.
    """

    def __init__(
        self,
        dim: int,
        side: int,
        out_dim: int,
        dropout: float,
        layout: Literal["release", "grid"],
    ) -> None:
        super().__init__()
        if side < 2:
            raise ValueError(f"relation network: a {side}x{side} token grid is too small")
        self.side, self.layout = side, layout
        self.conv = nn.Conv2d(dim, out_dim, 2, stride=2)
        cells = (side // 2) ** 2
        self.mlp = nn.Sequential(
            nn.Linear(cells * cells, 7 * cells),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(7 * cells, cells),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(cells, 1),
        )

    def cells(self, patches: torch.Tensor) -> torch.Tensor:
        """``(P, side^2, D)`` patch tokens to ``(P, cells, out_dim)`` vectors."""
        n, tokens, dim = patches.shape
        if tokens != self.side**2:
            raise ValueError(
                f"relation network: expected {self.side**2} patch tokens, got {tokens}"
            )
        if self.layout == "release":
            grid = patches.contiguous().view(n, dim, self.side, self.side)
        else:
            grid = patches.transpose(1, 2).reshape(n, dim, self.side, self.side)
        return self.conv(grid).flatten(2).transpose(1, 2)

    def kernel(self, sketch_patches: torch.Tensor, photo_patches: torch.Tensor) -> torch.Tensor:
        """``(P, cells * cells)``: cos(u_a, v_b), sketch cell a major, 0 where undefined."""
        u = F.normalize(self.cells(sketch_patches), dim=-1)
        v = F.normalize(self.cells(photo_patches), dim=-1)
        return (u @ v.transpose(1, 2)).flatten(1)

    def forward(self, sketch_patches: torch.Tensor, photo_patches: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(self.kernel(sketch_patches, photo_patches))).squeeze(1)


def grid_side(patch_tokens: int) -> int:
    """The side of a square token grid, or a ValueError."""
    side = math.isqrt(patch_tokens)
    if side * side != patch_tokens:
        raise ValueError(f"zse_sbir needs a square grid of patch tokens, got {patch_tokens}")
    return side


def triplet_term(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """mean max(0, |a - p| - |a - n| + margin), Euclidean with eps 1e-6 inside the norm
    (PyTorch's TripletMarginLoss, as the release)."""
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2.0, eps=1e-6)


def relation_term(
    positive: torch.Tensor, negative: torch.Tensor, targets: tuple[float, float]
) -> torch.Tensor:
    """Mean squared error of the relation scores: ``targets[1]`` for matching pairs,
    ``targets[0]`` for the others, over all 2b pairs."""
    low, high = targets
    scores = torch.cat([positive, negative])
    wanted = torch.cat([torch.full_like(positive, high), torch.full_like(negative, low)])
    return F.mse_loss(scores, wanted)
