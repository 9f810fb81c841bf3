"""retrieval_metrics against naive per-query references (and sklearn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbirbench.errors import UserError
from sbirbench.metrics import retrieval_metrics

from .reference_metrics import reference_metrics

METRICS = ["map@all", "map@1", "map@5", "map@37", "prec@1", "prec@10", "prec@37"]


def make_data(
    seed: int, nq: int = 40, ng: int = 150, dim: int = 8, classes: int = 6, ties: bool = False
):
    rng = np.random.default_rng(seed)
    ql = rng.integers(0, classes, nq)
    gl = rng.integers(0, classes, ng)
    centers = rng.normal(size=(classes, dim))
    q = centers[ql] + rng.normal(size=(nq, dim)) * 1.5
    g = centers[gl] + rng.normal(size=(ng, dim)) * 1.5
    if ties:  # few distinct values: many exactly equal dot products
        q, g = np.rint(q).clip(-1, 1), np.rint(g).clip(-1, 1)
    return q.astype(np.float32), ql, g.astype(np.float32), gl


def check(result, expected, metrics, tol=1e-9):
    for m in metrics:
        want = expected[m]
        keep = ~np.isnan(want)
        assert result[m] == pytest.approx(want[keep].mean(), abs=tol), m
        np.testing.assert_allclose(result["per_query"][m][keep], want[keep], atol=tol, err_msg=m)
        assert np.isnan(result["per_query"][m][~keep]).all()


@pytest.mark.parametrize("rule", ["shared", "index"])
@pytest.mark.parametrize("ap", ["interpolated", "sklearn"])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_matches_reference(rule, ap, ties, chunk):
    q, ql, g, gl = make_data(1, ties=ties)
    scores = q @ g.T  # what "dot" ranks by, computed the same way
    expected = reference_metrics(scores, ql, gl, METRICS, ap, rule)
    result = retrieval_metrics(
        q,
        ql,
        g,
        gl,
        metrics=METRICS,
        ap=ap,
        similarity="dot",
        chunk_size=chunk,
        per_query=True,
        ties=rule,
    )
    check(result, expected, METRICS)
    if ties:
        assert len(np.unique(scores)) < scores.size / 10  # the tie rule really mattered


@pytest.mark.parametrize("ap", ["interpolated", "sklearn"])
def test_shared_ties_do_not_depend_on_the_gallery_order(ap):
    q, ql, g, gl = make_data(21, ties=True)
    metrics = ["map@all", "map@10", "prec@10", "prec@37"]
    kw = dict(metrics=metrics, ap=ap, similarity="dot")
    by_class = np.argsort(gl, kind="stable")
    first = retrieval_metrics(q, ql, g[by_class], gl[by_class], **kw)
    shuffled = np.random.default_rng(0).permutation(len(g))
    second = retrieval_metrics(q, ql, g[shuffled], gl[shuffled], **kw)
    for m in metrics:
        assert first[m] == pytest.approx(second[m], abs=1e-12)
    # the gallery-index rule does depend on it (interpolated AP, Prec@K), which is why it
    # is not the default
    index = [
        retrieval_metrics(q, ql, g[o], gl[o], ties="index", **kw) for o in (by_class, shuffled)
    ]
    assert abs(index[0]["prec@10"] - index[1]["prec@10"]) > 1e-3
    assert first["conventions"]["ties"].startswith("shared threshold")


def test_topk_only_path_matches_full_sort():
    # Only map@K / prec@K with K well below the gallery size: the partition path.
    q, ql, g, gl = make_data(2, nq=30, ng=400, ties=True)
    metrics = ["map@20", "prec@20", "prec@5"]
    for rule in ("index", "shared"):
        expected = reference_metrics(q @ g.T, ql, gl, metrics, "interpolated", rule)
        result = retrieval_metrics(
            q, ql, g, gl, metrics=metrics, similarity="dot", per_query=True, ties=rule
        )
        check(result, expected, metrics)


def test_sklearn_average_precision_per_query():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    for ties in (False, True):
        q, ql, g, gl = make_data(3, ties=ties)
        scores = q @ g.T
        result = retrieval_metrics(
            q, ql, g, gl, metrics=["map@all"], ap="sklearn", similarity="dot", per_query=True
        )
        for i in range(len(q)):
            relevant = gl == ql[i]
            if relevant.any():
                want = sklearn_metrics.average_precision_score(relevant, scores[i])
                assert result["per_query"]["map@all"][i] == pytest.approx(want, abs=1e-12)


def test_queries_without_positives_are_counted_and_excluded():
    q, ql, g, gl = make_data(4)
    ql = ql.copy()
    ql[:5] = 99  # no gallery item of class 99
    result = retrieval_metrics(
        q,
        ql,
        g,
        gl,
        metrics=["map@all", "prec@10"],
        similarity="dot",
        per_query=True,
        per_class=True,
    )
    assert result["queries_without_positives"] == 5 and result["queries"] == len(q) - 5
    expected = reference_metrics(q @ g.T, ql, gl, ["map@all", "prec@10"], "interpolated")
    check(result, expected, ["map@all", "prec@10"])
    assert 99 not in result["per_class"]["map@all"]


def test_k_larger_than_the_gallery():
    q, ql, g, gl = make_data(5, ng=30)
    metrics = ["map@100", "prec@100", "map@all"]
    expected = reference_metrics(q @ g.T, ql, gl, metrics, "interpolated")
    result = retrieval_metrics(q, ql, g, gl, metrics=metrics, similarity="dot", per_query=True)
    check(result, expected, metrics)
    assert result["map@100"] == result["map@all"]


def test_per_class_means_are_means_of_their_queries():
    q, ql, g, gl = make_data(6)
    result = retrieval_metrics(q, ql, g, gl, metrics=["map@all"], per_query=True, per_class=True)
    per_query = result["per_query"]["map@all"]
    for label, value in result["per_class"]["map@all"].items():
        assert value == pytest.approx(per_query[ql == label].mean())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    q, ql, g, gl = make_data(7)
    qt, gt = torch.from_numpy(q).to(dtype), torch.from_numpy(g).to(dtype)
    q32, g32 = qt.float().numpy(), gt.float().numpy()
    expected = reference_metrics(q32 @ g32.T, ql, gl, METRICS, "interpolated")
    result = retrieval_metrics(
        qt,
        torch.from_numpy(ql),
        gt,
        torch.from_numpy(gl),
        metrics=METRICS,
        similarity="dot",
        per_query=True,
    )
    check(result, expected, METRICS)


def test_cosine_and_euclidean_rank_like_their_definitions():
    q, ql, g, gl = make_data(8)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    expected = reference_metrics(qn.astype(np.float64) @ gn.T, ql, gl, ["map@all"], "interpolated")
    cosine = retrieval_metrics(q, ql, g, gl, metrics=["map@all"], similarity="cosine")
    assert cosine["map@all"] == pytest.approx(np.nanmean(expected["map@all"]), abs=1e-6)
    distances = ((q[:, None, :].astype(np.float64) - g[None]) ** 2).sum(-1)
    expected = reference_metrics(-distances, ql, gl, ["map@all", "prec@10"], "interpolated")
    euclid = retrieval_metrics(q, ql, g, gl, metrics=["map@all", "prec@10"], similarity="euclidean")
    assert euclid["map@all"] == pytest.approx(np.nanmean(expected["map@all"]), abs=1e-6)
    assert euclid["prec@10"] == pytest.approx(np.nanmean(expected["prec@10"]), abs=1e-6)


@pytest.mark.parametrize("encoding", ["bool", "01", "pm1"])
@pytest.mark.parametrize("rule", ["shared", "index"])
def test_hamming_codes(encoding, rule):
    q, ql, g, gl = make_data(9, dim=16)
    bits_q, bits_g = q > 0, g > 0
    distance = (bits_q[:, None, :] != bits_g[None]).sum(-1)
    expected = reference_metrics(
        -distance.astype(np.float64), ql, gl, METRICS, "interpolated", rule
    )
    encode = {
        "bool": lambda b: b,
        "01": lambda b: b.astype(np.uint8),
        "pm1": lambda b: b.astype(np.int8) * 2 - 1,
    }[encoding]
    result = retrieval_metrics(
        encode(bits_q),
        ql,
        encode(bits_g),
        gl,
        metrics=METRICS,
        similarity="hamming",
        per_query=True,
        ties=rule,
    )
    check(result, expected, METRICS)
    sk = reference_metrics(-distance.astype(np.float64), ql, gl, ["map@all"], "sklearn", rule)
    result = retrieval_metrics(
        bits_q,
        ql,
        bits_g,
        gl,
        metrics=["map@all"],
        ap="sklearn",
        similarity="hamming",
        per_query=True,
        ties=rule,
    )
    check(result, sk, ["map@all"])


def test_a_known_ranking_by_hand():
    # One query of class 1; gallery scores descending in index order.
    relevant = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1, 1])
    g = np.linspace(1, 0, 10, dtype=np.float32)[:, None]
    result = retrieval_metrics(
        np.ones((1, 1), np.float32),
        [1],
        g,
        relevant,
        metrics=["map@all", "map@3", "prec@3"],
        similarity="dot",
    )
    # precision at hits: 1/2, 2/3, 3/5, 4/9, 5/10
    # envelope from the right: 2/3, 2/3, 3/5, 5/10, 5/10
    assert result["map@all"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 5 + 5 / 10 + 5 / 10) / 5)
    assert result["map@3"] == pytest.approx((2 / 3 + 2 / 3) / 3)
    assert result["prec@3"] == pytest.approx(2 / 3)


def test_bad_inputs_are_user_errors():
    q, ql, g, gl = make_data(10)
    with pytest.raises(UserError, match="unknown metric"):
        retrieval_metrics(q, ql, g, gl, metrics=["recall@5"])
    with pytest.raises(UserError, match="unknown AP convention"):
        retrieval_metrics(q, ql, g, gl, ap="voc")
    with pytest.raises(UserError, match="8-d but gallery features 4-d"):
        retrieval_metrics(q, ql, g[:, :4], gl)
    with pytest.raises(UserError, match="binary codes"):
        retrieval_metrics(q, ql, g, gl, similarity="hamming")
    with pytest.raises(UserError, match="differ in length"):
        retrieval_metrics(q, ql[:-1], g, gl)
    assert retrieval_metrics(q, ql, g, gl, metrics=["MAP@ALL"])["map@all"] > 0


def duplicated_gallery(seed: int, copies: int):
    """A gallery where ``copies`` items reappear (same features, random label): exact ties
    between a few items in every query's row."""
    q, ql, g, gl = make_data(seed, nq=25, ng=200)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(g), copies, replace=False)
    g = np.concatenate([g, g[picked]])
    gl = np.concatenate([gl, rng.integers(0, 6, copies)])
    order = rng.permutation(len(g))
    return q, ql, g[order], gl[order]


@pytest.mark.parametrize("copies", [3, 60])  # few ties per row (comparison pass) / many (argsort)
@pytest.mark.parametrize("ap", ["interpolated", "sklearn"])
@pytest.mark.parametrize("rule", ["shared", "index"])
def test_duplicated_gallery_items(copies, ap, rule):
    q, ql, g, gl = duplicated_gallery(11, copies)
    metrics = ["map@all", "map@10", "prec@10", "prec@50"]
    expected = reference_metrics(q @ g.T, ql, gl, metrics, ap, rule)
    result = retrieval_metrics(
        q, ql, g, gl, metrics=metrics, ap=ap, similarity="dot", per_query=True, ties=rule
    )
    check(result, expected, metrics)


def test_ties_on_the_top_k_boundary():
    # Many K values, one call each, so the partition threshold lands on tied scores.
    q, ql, g, gl = duplicated_gallery(12, 40)
    scores = q @ g.T
    for k in range(1, 61):
        metrics = [f"map@{k}", f"prec@{k}"]
        rule = ("index", "shared")[k % 2]
        expected = reference_metrics(scores, ql, gl, metrics, "interpolated", rule)
        result = retrieval_metrics(
            q, ql, g, gl, metrics=metrics, similarity="dot", per_query=True, ties=rule
        )
        check(result, expected, metrics)


def test_two_process_gloo_result_equals_single_process(tmp_path):
    from .distributed_helpers import run_workers

    q, ql, g, gl = duplicated_gallery(13, 5)
    np.savez(tmp_path / "data.npz", q=q, ql=ql, g=g, gl=gl)
    metrics = ["map@all", "map@10", "prec@10"]
    body = f"""
    import numpy as np
    from sbirbench.metrics import retrieval_metrics
    d = np.load(OUT + "/data.npz")
    r = retrieval_metrics(d["q"], d["ql"], d["g"], d["gl"], metrics={metrics!r},
                          similarity="dot", chunk_size=3, per_query=True)
    emit({{"metrics": {{m: r[m] for m in {metrics!r}}},
           "per_query": r["per_query"]["map@all"].tolist(), "queries": r["queries"]}})
    """
    ranks = run_workers(body, tmp_path, world_size=2)
    single = retrieval_metrics(q, ql, g, gl, metrics=metrics, similarity="dot", per_query=True)
    for payload in ranks:
        for m in metrics:
            assert payload["metrics"][m] == pytest.approx(single[m], abs=1e-12)
        np.testing.assert_allclose(payload["per_query"], single["per_query"]["map@all"])
        assert payload["queries"] == single["queries"]
