"""An independent cross-check of ``retrieval_metrics`` against torchmetrics' retrieval
metrics (a test dependency), and the conventions in which they differ (docs/protocol.md):

- torchmetrics' AP@K divides by the relevant items found in the top K; sbirbench's
  mAP@K by min(K, R), R the query's relevant items in the whole gallery (PROTOCOL.md);
- torchmetrics (1.x) counts an item whose score is not positive as not relevant, so the
  scores given to it here are cosine similarities shifted by +2 (the same ranking);
- with tied scores torchmetrics takes ``topk``'s order for every metric; in sbirbench
  Prec@K and interpolated AP follow ``ties`` (one shared threshold per tied block by
  default, gallery order with ``ties="index"``), and sklearn-convention AP always shares
  thresholds (sklearn's own rule).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbirbench.metrics import retrieval_metrics

retrieval = pytest.importorskip(
    "torchmetrics.functional.retrieval",
    reason="needs torchmetrics (a test dependency: pip install -e '.[test]')",
)


def data(seed: int, queries: int = 30, gallery: int = 120, classes: int = 6, tied: bool = False):
    rng = np.random.default_rng(seed)
    q, g = rng.normal(size=(queries, 8)), rng.normal(size=(gallery, 8))
    if tied:  # one-hot features: every cosine is exactly 0 or 1, however it is computed
        q, g = np.eye(8)[rng.integers(0, 8, queries)], np.eye(8)[rng.integers(0, 8, gallery)]
    return (
        torch.tensor(q, dtype=torch.float32),
        torch.tensor(rng.integers(0, classes, queries)),
        torch.tensor(g, dtype=torch.float32),
        torch.tensor(rng.integers(0, classes, gallery)),
    )


def scores(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    q, g = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(g, dim=-1)
    return q @ g.T + 2.0  # positive: torchmetrics drops non-positive items


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_all_and_precision_agree_without_ties(seed):
    q, ql, g, gl = data(seed)
    ours = retrieval_metrics(q, ql, g, gl, metrics=("map@all", "prec@10", "prec@50"), ap="sklearn")
    s, relevant = scores(q, g), ql[:, None] == gl[None, :]
    ap = [float(retrieval.retrieval_average_precision(s[i], relevant[i])) for i in range(len(q))]
    assert ours["map@all"] == pytest.approx(float(np.mean(ap)), abs=1e-6)
    for k in (10, 50):
        precision = [
            float(retrieval.retrieval_precision(s[i], relevant[i], top_k=k)) for i in range(len(q))
        ]
        assert ours[f"prec@{k}"] == pytest.approx(float(np.mean(precision)), abs=1e-6)


def test_map_at_k_differs_only_in_its_normaliser():
    q, ql, g, gl = data(3)
    k = 10
    ours = retrieval_metrics(q, ql, g, gl, metrics=(f"map@{k}",), ap="sklearn", per_query=True)
    s, relevant = scores(q, g), ql[:, None] == gl[None, :]
    for i in range(len(q)):
        theirs = float(retrieval.retrieval_average_precision(s[i], relevant[i], top_k=k))
        hits = int(relevant[i][s[i].topk(k).indices].sum())
        total = int(relevant[i].sum())
        mine = float(ours["per_query"][f"map@{k}"][i])
        # the same sum of precisions at the hits, divided by hits (torchmetrics) or by
        # min(K, R) (sbirbench)
        expected = theirs * hits / min(k, total) if hits else 0.0
        assert mine == pytest.approx(expected, abs=1e-6)


def test_with_ties_precision_follows_the_tie_rule_and_ap_shares_thresholds():
    """Prec@K under ``ties="index"`` is torchmetrics' on scores broken by gallery index;
    sklearn-convention AP shares one threshold per tied block (sklearn's own rule) under
    either tie rule, so it differs from torchmetrics' order-dependent AP."""
    q, ql, g, gl = data(4, tied=True)
    s, relevant = scores(q, g), ql[:, None] == gl[None, :]
    assert (s[:, :, None] == s[:, None, :]).sum() > s.numel()  # ties exist
    index = retrieval_metrics(
        q, ql, g, gl, metrics=("map@all", "prec@10"), ap="sklearn", ties="index"
    )
    # float32 inside torchmetrics: steps of 1e-5 survive it and stay below the 1.0 score gaps
    broken = s - torch.arange(s.shape[1], dtype=torch.float32) * 1e-5
    precision = [
        float(retrieval.retrieval_precision(broken[i], relevant[i], top_k=10))
        for i in range(len(q))
    ]
    assert index["prec@10"] == pytest.approx(float(np.mean(precision)), abs=1e-6)
    ap = [
        float(retrieval.retrieval_average_precision(broken[i], relevant[i])) for i in range(len(q))
    ]
    shared = retrieval_metrics(q, ql, g, gl, metrics=("map@all",), ap="sklearn")
    assert index["map@all"] == pytest.approx(shared["map@all"], abs=1e-9)
    assert shared["map@all"] != pytest.approx(float(np.mean(ap)), abs=1e-3)
