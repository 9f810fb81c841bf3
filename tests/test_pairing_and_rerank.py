"""Two engine features the pair-based methods need: same-class photo sampling
(sbirbench.data.pairing) and the second retrieval stage (sbirbench.pipeline.rerank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sbirbench.data.items import EpochSampler
from sbirbench.data.pairing import SameClassSampler, SketchPairSampler
from sbirbench.errors import UserError
from sbirbench.interfaces import Reranker
from sbirbench.methods.pretrained import Pretrained
from sbirbench.metrics import retrieval_metrics
from sbirbench.pipeline.evaluation import evaluate
from sbirbench.pipeline.rerank import rescale
from sbirbench.runtime.distributed import Context
from sbirbench.testing import ToyDataset

from .distributed_helpers import run_workers
from .reference_metrics import reference_metrics
from .test_evaluate import pretrained_on, protocol

SKETCH_LABELS = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 0, 2]
PHOTO_LABELS = [3, 0, 1, 2, 0, 1, 2, 3, 1, 3]


def samplers(rank: int = 0, world: int = 1) -> tuple[EpochSampler, SameClassSampler]:
    sketches = EpochSampler(SKETCH_LABELS, num_replicas=world, rank=rank, seed=7)
    photos = SameClassSampler(PHOTO_LABELS, sketches, SKETCH_LABELS, PHOTO_LABELS, seed=11)
    return sketches, photos


@pytest.mark.parametrize("world", [1, 2])
def test_the_ith_photo_is_of_the_ith_sketchs_class_on_every_rank(world):
    for rank in range(world):
        sketches, photos = samplers(rank, world)
        for epoch in range(3):
            sketches.begin(epoch)
            photos.begin(epoch)
            drawn_sketches, drawn_photos = list(sketches), list(photos)
            assert len(drawn_photos) == len(drawn_sketches) == len(photos)
            for (e1, s), (e2, p) in zip(drawn_sketches, drawn_photos, strict=True):
                assert e1 == e2 == epoch
                assert PHOTO_LABELS[p] == SKETCH_LABELS[s]


def test_a_resumed_epoch_continues_the_same_pairs_and_epochs_differ():
    _, photos = samplers()
    photos.begin(4)
    whole = list(photos)
    photos.begin(4, start=5)
    assert list(photos) == whole[5:]
    photos.begin(5)
    assert [p for _, p in photos] != [p for _, p in whole]
    seen: set[int] = set()
    for epoch in range(40):  # every photo of a class is drawn sooner or later
        photos.begin(epoch)
        seen.update(p for _, p in photos)
    assert seen == set(range(len(PHOTO_LABELS)))


@pytest.mark.parametrize("world", [1, 2])
def test_sketches_come_in_same_class_pairs_that_photos_follow(world):
    for rank in range(world):
        sketches = SketchPairSampler(SKETCH_LABELS, SKETCH_LABELS, num_replicas=world,
                                     rank=rank, seed=3)  # fmt: skip
        photos = SameClassSampler(PHOTO_LABELS, sketches, SKETCH_LABELS, PHOTO_LABELS, seed=1)
        for epoch in range(5):
            sketches.begin(epoch)
            photos.begin(epoch)
            drawn = [s for _, s in sketches]
            assert len(drawn) == len(sketches) and len(drawn) % 2 == 0
            for a, b in zip(drawn[0::2], drawn[1::2], strict=True):
                assert SKETCH_LABELS[a] == SKETCH_LABELS[b] and a != b  # every class has 2+
            assert [PHOTO_LABELS[p] for _, p in photos] == [SKETCH_LABELS[s] for s in drawn]
            sketches.begin(epoch, start=2)
            assert [s for _, s in sketches] == drawn[2:]


def test_a_class_with_sketches_and_no_photo_is_one_line():
    sketches = EpochSampler(SKETCH_LABELS, num_replicas=1, rank=0, seed=0)
    with pytest.raises(UserError, match=r"1 training class\(es\) have sketches but no photo"):
        SameClassSampler([0, 1, 3], sketches, SKETCH_LABELS, [0, 1, 3], seed=0)  # no class 2


def test_score_overrides_replace_those_scores_before_ranking():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(7, 4)), rng.normal(size=(9, 4))
    ql, gl = rng.integers(0, 3, 7), rng.integers(0, 3, 9)
    cols = np.stack([rng.choice(9, 3, replace=False) for _ in range(7)])
    values = rng.uniform(2, 3, size=(7, 3))
    metrics = ["map@all", "map@4", "prec@2"]
    got = retrieval_metrics(q, ql, g, gl, metrics=metrics, score_overrides=(cols, values))
    qn, gn = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (q, g))
    scores = qn @ gn.T
    for i in range(7):
        scores[i, cols[i]] = values[i]
    want = reference_metrics(scores.astype(np.float32), ql, gl, metrics, "interpolated")
    for m in metrics:
        assert got[m] == pytest.approx(np.nanmean(want[m]), abs=1e-6)
    with pytest.raises(UserError, match="gallery columns outside"):
        retrieval_metrics(q, ql, g, gl, score_overrides=(cols + 9, values))


def test_re_ranked_scores_keep_the_order_and_ties_of_any_relation():
    relation = torch.tensor([[40.0, -30.0, 16.0, 17.0, 17.0], [0.1, 0.1, 0.1, 0.1, 0.1]])
    scaled = rescale(relation.double())
    assert scaled.dtype == torch.float32
    assert torch.equal(scaled.argsort(dim=1, stable=True), relation.argsort(dim=1, stable=True))
    assert float(scaled[0, 3]) == float(scaled[0, 4]) and float(scaled[0, 2]) < float(scaled[0, 3])
    assert float(scaled.min()) >= 2 and float(scaled.max()) <= 3  # above every cosine
    assert torch.equal(scaled[1], torch.full((5,), 2.0))


class MeanColourReranker(Pretrained, Reranker):
    """Stage 2 scores a pair by how close the two images' mean colours are."""

    k: int | None = 3

    def rerank_k(self) -> int | None:
        return self.k

    def pair_tokens(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        return images.mean(dim=(2, 3))[:, None, :]  # (B, 1, 3)

    def relation(self, sketch_tokens: torch.Tensor, photo_tokens: torch.Tensor) -> torch.Tensor:
        return -(sketch_tokens - photo_tokens).norm(dim=-1)[:, 0]


@pytest.mark.parametrize("k", [3, None])
def test_the_top_k_are_re_ordered_by_the_relation_and_the_rest_keep_their_order(k):
    dataset, plain = pretrained_on(ToyDataset)
    method = MeanColourReranker(plain.config, plain.setup)
    method.k = k
    metrics = ("map@all", "prec@2", "map@5")
    result = evaluate(method, dataset, protocol(*metrics), context=Context())
    assert result.reranked_metrics is not None and result.rerank is not None
    # The same from plain loops: cosine scores, then 2 + sigmoid(relation) on the top k.
    from sbirbench.pipeline.embedding import embed

    queries = embed(method, dataset, "sketch", context=Context())
    gallery = embed(method, dataset, "photo", context=Context())
    q_tok = embed(method, dataset, "sketch", context=Context(), tokens=True).features.float()
    g_tok = embed(method, dataset, "photo", context=Context(), tokens=True).features.float()
    qn = torch.nn.functional.normalize(queries.features, dim=1)
    gn = torch.nn.functional.normalize(gallery.features, dim=1)
    scores = (qn @ gn.T).numpy().astype(np.float64)
    top = len(gn) if k is None else k
    for i in range(len(qn)):
        candidates = np.argsort(-scores[i], kind="stable")[:top].tolist()
        relation = {
            j: float(method.relation(q_tok[i : i + 1], g_tok[j : j + 1])) for j in candidates
        }
        low, high = min(relation.values()), max(relation.values())
        for j, r in relation.items():  # min-max scaled into [2, 3] per query
            scores[i, j] = 2 + (r - low) / (high - low)
    want = reference_metrics(
        scores.astype(np.float32), queries.labels.numpy(), gallery.labels.numpy(),
        list(metrics), "interpolated",
    )  # fmt: skip
    for m in metrics:
        assert result.reranked_metrics[m] == pytest.approx(np.nanmean(want[m]), abs=1e-5)
    assert result.rerank["k"] == ("all" if k is None else 3)
    assert result.rerank["pairs"] == len(qn) * top
    fields = result.fields()
    assert fields["reranked_metrics"] == result.reranked_metrics


def test_two_ranks_share_the_re_ranking_and_agree_with_one(tmp_path):
    root = str(Path(__file__).resolve().parents[1])
    body = f"""
    sys.path.insert(0, {root!r})
    from sbirbench.runtime.distributed import Context
    from sbirbench.pipeline.evaluation import evaluate
    from sbirbench.testing import ToyDataset
    from tests.test_evaluate import pretrained_on, protocol
    from tests.test_pairing_and_rerank import MeanColourReranker
    dataset, plain = pretrained_on(ToyDataset)
    method = MeanColourReranker(plain.config, plain.setup)
    result = evaluate(method, dataset, protocol("map@all", "prec@2"), context=Context(RANK, WORLD))
    emit({{"reranked": result.reranked_metrics, "rerank": result.rerank}})
    """
    payloads = run_workers(body, tmp_path)
    dataset, plain = pretrained_on(ToyDataset)
    method = MeanColourReranker(plain.config, plain.setup)
    alone = evaluate(method, dataset, protocol("map@all", "prec@2"), context=Context())
    for payload in payloads:
        assert payload["rerank"] == alone.rerank
        for metric, value in alone.reranked_metrics.items():
            assert payload["reranked"][metric] == pytest.approx(value, abs=1e-6)
