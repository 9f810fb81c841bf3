"""Speed of ``retrieval_metrics`` against per-query references and the floor, one run.

    python perf/metrics_speed.py                      # TU-Berlin scale on the CPU
    python perf/metrics_speed.py --scale quickdraw --device cuda

References, on the same random L2-normalised features (so "dot" is the cosine; all rank
the same float32 score matrix), mAP@all + Prec@100:
  numpy-loop   the community's loop: per query, argsort the scores, then AP with cumsum
               and a vectorised precision envelope (the SAKE formula) in numpy;
  sklearn-loop per query, sklearn.metrics.average_precision_score (non-interpolated);
  floor        one matrix product plus one numpy sort of every score row, nothing else.
The loops are timed on a subset of queries and scaled to all queries (printed).
Results are compared as the difference of the means over that subset. Per query, scores
can differ in the last float32 bit between a multi-threaded and a single-threaded BLAS
product, which can swap near-tied items; on identical scores the results are identical
(tests/test_metrics.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from sbirbench.metrics import retrieval_metrics

SCALES = {
    "tuberlin": (2400, 27989, 512, 30),
    "quickdraw": (92291, 54151, 512, 30),
    "small": (500, 5000, 256, 20),
}


def data(scale: str, seed: int = 0):
    nq, ng, dim, classes = SCALES[scale]
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)).astype(np.float32)
    ql, gl = rng.integers(0, classes, nq), rng.integers(0, classes, ng)
    q = centers[ql] + 3.5 * rng.normal(size=(nq, dim)).astype(np.float32)
    g = centers[gl] + 3.5 * rng.normal(size=(ng, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return q, ql, g, gl


def score_matrix(q, g, chunk=256):
    """The similarity matrix, as the community code computes it before its loop."""
    return np.concatenate([q[s : s + chunk] @ g.T for s in range(0, len(q), chunk)])


def numpy_loop(q, ql, g, gl, k=100):
    """Per query: argsort, then the SAKE AP formula and Prec@k in numpy."""
    aps, precs = [], []
    for i, scores in enumerate(score_matrix(q, g)):
        relevant = gl[np.argsort(-scores, kind="stable")] == ql[i]
        tp = np.cumsum(relevant)
        precision = tp / np.arange(1, len(relevant) + 1)
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        aps.append(envelope[relevant].sum() / relevant.sum())
        precs.append(relevant[:k].sum() / k)
    return np.array(aps), np.array(precs)


def sklearn_loop(q, ql, g, gl):
    from sklearn.metrics import average_precision_score

    return np.array(
        [
            average_precision_score(gl == ql[i], scores)
            for i, scores in enumerate(score_matrix(q, g))
        ]
    )


def floor(q, g, chunk=256):
    """One matrix product and one sort of every score row."""
    for s in range(0, len(q), chunk):
        np.sort(q[s : s + chunk] @ g.T, axis=1)


def timed(fn, repeats=1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="tuberlin")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--loop-queries",
        type=int,
        default=300,
        help="queries timed for the per-query loops (scaled to all)",
    )
    parser.add_argument(
        "--chunk-sizes", default="", help="also time these chunk sizes, e.g. 64,256,1024"
    )
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--ties",
        choices=("shared", "index"),
        default="shared",
        help="the tie rule timed (and --compare-ties: both)",
    )
    parser.add_argument(
        "--compare-ties",
        action="store_true",
        help="also time the other tie rule (ratio in the output)",
    )
    args = parser.parse_args()

    q, ql, g, gl = data(args.scale)
    nq = len(q)
    print(
        f"{args.scale}: {nq} queries x {len(g)} gallery, {q.shape[1]}-d; device {args.device}; "
        f"torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}"
    )
    dev = torch.device(args.device)
    qt, gt = torch.from_numpy(q).to(dev), torch.from_numpy(g).to(dev)

    def run(**kw):
        out = retrieval_metrics(
            qt,
            ql,
            gt,
            gl,
            metrics=("map@all", "prec@100"),
            similarity="dot",
            per_query=True,
            device=dev,
            **{"ties": args.ties, **kw},
        )
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out

    run()  # warm-up
    t_ours, ours = timed(run, args.repeats)
    figures = {
        "scale": args.scale,
        "device": args.device,
        "queries": nq,
        "gallery": len(g),
        "ties": args.ties,
        "ours_s": t_ours,
    }
    if args.compare_ties:
        other = "index" if args.ties == "shared" else "shared"
        t_other, _ = timed(lambda: run(ties=other), args.repeats)
        figures[f"ties_{other}_s"] = t_other
        print(
            f"ties={other:7}          {t_other:8.3f} s   ties={args.ties} / ties={other} = "
            f"{t_ours / t_other:.2f}"
        )
    print(
        f"retrieval_metrics      {t_ours:8.3f} s   mAP@all {ours['map@all']:.6f}  "
        f"Prec@100 {ours['prec@100']:.6f}"
    )
    for size in filter(None, args.chunk_sizes.split(",")):
        t_chunk, _ = timed(lambda s=int(size): run(chunk_size=s), args.repeats)
        print(f"  chunk_size={size:<6}   {t_chunk:8.3f} s")
        figures[f"ours_chunk{size}_s"] = t_chunk

    if dev.type == "cpu":
        t_floor, _ = timed(lambda: floor(q, g), args.repeats)
        figures["floor_s"] = t_floor
        print(f"floor (matmul + sort)  {t_floor:8.3f} s   ours / floor = {t_ours / t_floor:.2f}")
        n = min(args.loop_queries, nq)
        scale = nq / n
        t_loop, (aps, precs) = timed(lambda: numpy_loop(q[:n], ql[:n], g, gl))
        t_loop *= scale
        figures["numpy_loop_s"] = t_loop
        diff_ap = abs(aps.mean() - ours["per_query"]["map@all"][:n].mean())
        diff_prec = abs(precs.mean() - ours["per_query"]["prec@100"][:n].mean())
        figures.update(numpy_loop_map_diff=diff_ap, numpy_loop_prec_diff=diff_prec)
        print(
            f"numpy per-query loop   {t_loop:8.3f} s   (timed on {n}, scaled)   "
            f"speed-up {t_loop / t_ours:5.1f}x   |diff| of means: mAP {diff_ap:.1e} "
            f"Prec {diff_prec:.1e}"
        )
        try:
            t_sk, sk = timed(lambda: sklearn_loop(q[:n], ql[:n], g, gl))
        except ImportError:
            print("sklearn loop           skipped (scikit-learn not installed)")
        else:
            t_sk *= scale
            ours_sk = retrieval_metrics(
                q[:n],
                ql[:n],
                g,
                gl,
                metrics=("map@all",),
                ap="sklearn",
                similarity="dot",
                per_query=True,
            )["per_query"]["map@all"]
            figures["sklearn_loop_s"] = t_sk
            diff_sk = abs(sk.mean() - ours_sk.mean())
            figures["sklearn_loop_map_diff"] = diff_sk
            print(
                f"sklearn per-query loop {t_sk:8.3f} s   (timed on {n}, scaled)   "
                f"speed-up {t_sk / t_ours:5.1f}x   |diff| of means: mAP {diff_sk:.1e}"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
