"""The optional second retrieval stage a method may offer (re-exported by
:mod:`sbirbench.interfaces`; imports neither torch nor timm).

A method that also subclasses :class:`Reranker` is evaluated twice: once by the cosine
of :meth:`~sbirbench.interfaces.Method.embed` (stage 1), and once with the top
:meth:`rerank_k` photos of every query re-ordered by :meth:`relation`, a score of the
(sketch, photo) pair itself (stage 2, ZSE-SBIR's relation network). Both rankings are
recorded: ``metrics`` and ``reranked_metrics``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from sbirbench.interfaces import Modality


class Reranker(ABC):
    """Pairwise scoring for a second retrieval stage."""

    @abstractmethod
    def rerank_k(self) -> int | None:
        """How many stage-1 candidates of each query to re-order (None: every photo)."""

    @abstractmethod
    def pair_tokens(self, images: Tensor, modality: Modality) -> Tensor:
        """Per-image state ``(B, N, D)`` that :meth:`relation` reads; computed once per
        test image (under ``torch.inference_mode``) and kept for every pair."""

    @abstractmethod
    def relation(self, sketch_tokens: Tensor, photo_tokens: Tensor) -> Tensor:
        """Scores ``(P,)`` of ``P`` (sketch, photo) pairs given as two ``(P, N, D)``
        stacks of :meth:`pair_tokens`; higher means more alike."""


def rerank_label(k: object) -> str:
    """How a result's second ranking is named in tables: "re-ranked, top 100" or
    "re-ranked, all pairs" (``k`` as results record it: an integer or "all")."""
    return "re-ranked, all pairs" if k == "all" else f"re-ranked, top {k}"
