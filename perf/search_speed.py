"""Exact search against faiss HNSW at QuickDraw scale: time per query and recall@k.

    python perf/search_speed.py [--gallery 54151] [--queries 1000] [--dim 256] [-k 10]

The gallery is random unit vectors with class structure (each item is its class centre
plus noise), so neighbours are meaningful; the queries are drawn the same way. Exact
search is ``sbirbench.search.searcher.nearest`` (one matrix product and a partial sort per query);
faiss is the graph ``sbirbench index --faiss`` writes (HNSW, 32 neighbours, efSearch 128),
queried one sketch at a time as ``sbirbench search`` does. Recall@k: the share of the
exact top k that faiss returns.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sbirbench.search.searcher import HNSW_NEIGHBOURS, HNSW_SEARCH_DEPTH, nearest


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gallery", type=int, default=54151)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--classes", type=int, default=110)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    import faiss

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.classes, args.dim))
    gallery = unit(
        centres[rng.integers(0, args.classes, args.gallery)]
        + rng.normal(size=(args.gallery, args.dim)) * 1.5
    )
    queries = unit(
        centres[rng.integers(0, args.classes, args.queries)]
        + rng.normal(size=(args.queries, args.dim)) * 1.5
    )

    started = time.perf_counter()
    exact = [nearest(gallery, q, args.k) for q in queries]
    exact_ms = (time.perf_counter() - started) / args.queries * 1e3

    started = time.perf_counter()
    graph = faiss.IndexHNSWFlat(args.dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    graph.add(gallery)
    build_s = time.perf_counter() - started
    graph.hnsw.efSearch = HNSW_SEARCH_DEPTH
    started = time.perf_counter()
    approx = [graph.search(q[None, :], args.k)[1][0] for q in queries]
    faiss_ms = (time.perf_counter() - started) / args.queries * 1e3
    recall = float(
        np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact, strict=True)])
    )
    print(json.dumps({
        "gallery": args.gallery, "dim": args.dim, "queries": args.queries, "k": args.k,
        "exact_ms_per_query": round(exact_ms, 3), "faiss_ms_per_query": round(faiss_ms, 3),
        "speed_up": round(exact_ms / faiss_ms, 1), "faiss_build_s": round(build_s, 1),
        f"faiss_recall@{args.k}": round(recall, 4),
        "threads": faiss.omp_get_max_threads(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
