"""PCA + ITQ hashing: shapes, determinism, the two rotation updates, and that Hamming
ranking of the codes keeps the float ranking's quality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sbirbench.errors import UserError
from sbirbench.hashing import itq_codes, itq_rotation
from sbirbench.metrics import retrieval_metrics


def clustered(seed=0, classes=10, per_class=40, dim=96, noise=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    q = centers[labels] + noise * rng.normal(size=(len(labels), dim))
    g = centers[labels] + noise * rng.normal(size=(len(labels), dim))
    return q.astype(np.float32), labels, g.astype(np.float32), labels


def test_codes_have_the_requested_bits_and_are_deterministic():
    q, _, g, _ = clustered()
    cq, cg = itq_codes(q, g, bits=64)
    assert cq.shape == (len(q), 64) and cg.shape == (len(g), 64) and cq.dtype == bool
    again = itq_codes(q, g, bits=64)
    np.testing.assert_array_equal(cq, again[0])
    assert 0.3 < cq.mean() < 0.7  # roughly balanced bits after centring


def release_itq(sketches: np.ndarray, photos: np.ndarray, bits: int) -> tuple[np.ndarray, ...]:
    """The TVT/PSKD release's procedure, written out plainly: float32 centring per set,
    covariance eigenvectors from the upper triangle, largest first (first ``bits``), ITQ
    with the legacy generator seeded 50 and the update R = UA @ UB^T, sign > 0."""
    a = sketches - np.mean(sketches, axis=0, keepdims=True)
    b = photos - np.mean(photos, axis=0, keepdims=True)
    values, vectors = np.linalg.eigh(np.cov(a, rowvar=False), "U")
    vectors = vectors[:, values.argsort()[::-1]][:, :bits]
    pa, pb = np.matmul(a, vectors), np.matmul(b, vectors)
    np.random.seed(50)
    rotation = np.linalg.svd(np.random.randn(bits, bits))[0][:, :bits]
    for _ in range(50):
        signs = np.ones(pa.shape) * -1
        signs[np.matmul(pa, rotation) >= 0] = 1
        ub, _, ua = np.linalg.svd(np.matmul(signs.T, pa))
        rotation = np.matmul(ua, ub.T)
    return np.matmul(pa, rotation) > 0, np.matmul(pb, rotation) > 0


def test_codes_are_the_release_codes_bit_for_bit():
    q, _, g, _ = clustered(seed=3, dim=96)
    ours = itq_codes(q, g, bits=64)
    theirs = release_itq(q, g, 64)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    state = np.random.get_state()  # and without touching numpy's global generator
    itq_codes(q, g, bits=16)
    assert np.array_equal(state[1], np.random.get_state()[1])


def test_procrustes_update_never_increases_the_loss_and_reference_differs():
    rng = np.random.default_rng(1)
    projected = rng.normal(size=(500, 16)) @ np.diag(np.linspace(3, 0.5, 16))
    _, losses = itq_rotation(projected, 30, variant="procrustes")
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(losses))
    assert losses[-1] < losses[0]
    r_ref, _ = itq_rotation(projected, 30, variant="reference")
    r_pro, _ = itq_rotation(projected, 30, variant="procrustes")
    assert not np.allclose(r_ref, r_pro)
    np.testing.assert_allclose(r_ref @ r_ref.T, np.eye(16), atol=1e-9)  # still a rotation


@pytest.mark.parametrize("variant", ["reference", "procrustes"])
def test_hamming_ranking_follows_the_float_ranking(variant):
    q, ql, g, gl = clustered(noise=2.5)
    floats = retrieval_metrics(q, ql, g, gl, metrics=["map@all"], per_class=True)
    cq, cg = itq_codes(q, g, bits=32, variant=variant)
    hashed = retrieval_metrics(
        cq, ql, cg, gl, metrics=["map@all"], similarity="hamming", per_class=True
    )
    assert 0.15 < floats["map@all"] < 0.95  # not trivially separable
    assert hashed["map@all"] > 0.6 * floats["map@all"]
    assert hashed["map@all"] <= floats["map@all"] + 0.05
    f = np.array(list(floats["per_class"]["map@all"].values()))
    h = np.array(list(hashed["per_class"]["map@all"].values()))
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(ranks(f), ranks(h))[0, 1] > 0.5  # same easy and hard classes
    shuffled = retrieval_metrics(
        cq,
        np.random.default_rng(0).permutation(ql),
        cg,
        gl,
        metrics=["map@all"],
        similarity="hamming",
    )
    assert shuffled["map@all"] < 0.5 * hashed["map@all"]


def test_bad_arguments():
    q, _, g, _ = clustered()
    with pytest.raises(UserError, match="between 1 and the feature width 96"):
        itq_codes(q, g, bits=128)
    with pytest.raises(UserError, match="same width"):
        itq_codes(q, g[:, :10])
    with pytest.raises(UserError, match="unknown ITQ variant"):
        itq_codes(q, g, variant="magic")
