"""Indexing speed: a TU-Berlin-sized tree (200k files) with and without the index cache.

    python perf/index_speed.py [--files 200000]

Builds a tree of empty files (250 classes, sketches/images layout) in a temporary folder,
then times building the ``tuberlin`` data set: the first build scans with os.scandir, the
second reads the cached index. Reference: a plain ``os.walk`` listing of the same tree.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sbirbench.datasets.names import shipped_list
from sbirbench.datasets.tuberlin import TUBerlin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    args = parser.parse_args()
    classes = shipped_list("tuberlin_classes.txt")
    per_class = args.files // (2 * len(classes))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "TU-Berlin"
        for modality, suffix in (("sketches", ".png"), ("images", ".jpg")):
            for cls in classes:
                folder = root / modality / cls
                folder.mkdir(parents=True)
                for i in range(per_class):
                    (folder / f"{i}{suffix}").touch()
        total = 2 * len(classes) * per_class
        os.environ["SBIRBENCH_CACHE"] = str(Path(tmp) / "cache")
        start = time.perf_counter()
        walked = sum(len(files) for _, _, files in os.walk(root))
        t_walk = time.perf_counter() - start
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            dataset = TUBerlin(TUBerlin.Config(data_root=tmp, split="zeroshot"))
            timings.append((time.perf_counter() - start, dataset.index.cached))
        print(f"{total} files ({walked} walked), 250 classes")
        print(f"os.walk listing (reference)   {t_walk:6.3f} s")
        for seconds, cached in timings:
            label = "cached index" if cached else "scandir index"
            print(
                f"tuberlin data set, {label:14} {seconds:6.3f} s   "
                f"({seconds / t_walk:.2f}x os.walk)"
            )


if __name__ == "__main__":
    main()
