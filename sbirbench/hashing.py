"""Binary codes for the "64-bit" rows of the published tables: PCA + ITQ.

As in the TVT/PSKD evaluation code (from SEM-PCYC's ``compressITQ``): each set is centred
by its own mean, in float32 as the features come; PCA takes the eigenvectors of the
query covariance (``numpy.cov``, float64) from its upper triangle
(``numpy.linalg.eigh(C, UPLO="U")``), largest eigenvalue first, truncated to ``bits``
(the public copies of that function keep every component and are handed features of
the code length; truncating is what gives a 64-bit code from 384-d features); the ITQ
rotation (``iterations`` updates from a random orthogonal start drawn with numpy's
legacy generator, seed 50) is fitted on the query (sketch) projections and applied to
both sets; a code bit is 1 where the rotated projection is > 0.
``tests/test_hashing.py`` checks bit-for-bit equality with a plain transcription of that
procedure.

``variant="reference"`` reproduces that code's rotation update ``R = Vh @ U.T`` (with
``U, S, Vh = svd(B.T @ V)``), which is not the Procrustes solution of Gong & Lazebnik;
``variant="procrustes"`` uses the textbook ``R = Vh.T @ U.T``, whose quantisation loss
never increases. The reference variant is the default so that results compare with the
published 64-bit numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sbirbench.errors import UserError

VARIANTS = ("reference", "procrustes")


def _as_numpy(x: Any) -> np.ndarray:
    """Features as float32 numpy (what the reference code receives from the network)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def itq_rotation(
    projected: np.ndarray, iterations: int = 50, *, variant: str = "reference", seed: int = 50
) -> tuple[np.ndarray, list[float]]:
    """The ITQ rotation of PCA-projected data, and the quantisation loss per iteration."""
    if variant not in VARIANTS:
        raise UserError(f"unknown ITQ variant '{variant}'; use one of {', '.join(VARIANTS)}")
    bits = projected.shape[1]
    rng = np.random.RandomState(seed)  # the legacy generator, as np.random.seed() in the reference
    rotation = np.linalg.svd(rng.randn(bits, bits))[0][:, :bits]
    losses = []
    for _ in range(iterations):
        z = projected @ rotation
        codes = np.where(z >= 0, 1.0, -1.0)
        losses.append(float(((codes - z) ** 2).sum()))
        u, _, vh = np.linalg.svd(codes.T @ projected)
        rotation = vh @ u.T if variant == "reference" else vh.T @ u.T
    return rotation, losses


def itq_codes(
    query: Any,
    gallery: Any,
    bits: int = 64,
    iterations: int = 50,
    *,
    variant: str = "reference",
    seed: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean codes ``(Nq, bits)`` and ``(Ng, bits)`` fitted on the query features."""
    q, g = _as_numpy(query), _as_numpy(gallery)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise UserError("hashing needs query and gallery features of the same width")
    if not 0 < bits <= q.shape[1]:
        raise UserError(f"--hash-bits {bits} must be between 1 and the feature width {q.shape[1]}")
    if len(q) < 2:
        raise UserError("hashing needs at least two query features to fit PCA")
    q = q - q.mean(axis=0, keepdims=True)  # float32, as in the reference
    g = g - g.mean(axis=0, keepdims=True)
    eigenvalues, vectors = np.linalg.eigh(np.cov(q, rowvar=False), UPLO="U")
    components = vectors[:, np.argsort(eigenvalues)[::-1][:bits]]
    q_proj, g_proj = q @ components, g @ components
    rotation, _ = itq_rotation(q_proj, iterations, variant=variant, seed=seed)
    return q_proj @ rotation > 0, g_proj @ rotation > 0
