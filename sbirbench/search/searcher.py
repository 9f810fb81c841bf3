"""Search a photo folder with a sketch, using a trained run (``sbirbench index`` and
``sbirbench search``).

The index is one ``.npz`` file: the photos' paths (relative to the folder), sizes and
modification times, their L2-normalised embeddings, and the model's fingerprint (the
checkpoint's SHA-256 and its input spec). Building it again embeds only new or changed
photos and drops removed ones; it is saved (atomically) at most once a minute while it
grows and at the end, so an interrupted build resumes close to where it stopped (each
save rewrites the whole file, so saving after every block would cost quadratic I/O).
Search is exact by default: one matrix product and a top-k over the whole index. For
galleries too large for that, ``index --faiss`` also writes a faiss HNSW graph
(``<index>.faiss``; the ``[search]`` extra) that ``search --engine faiss`` queries
instead (PERFORMANCE.md: its speed and recall@k against exact search).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sbirbench.data.transforms import eval_transform
from sbirbench.errors import UserError
from sbirbench.interfaces import Method, Modality
from sbirbench.pipeline.options import RunOptions
from sbirbench.pipeline.resolve_saved import load_saved, rebuild, resolve_saved
from sbirbench.runtime import atomic
from sbirbench.runtime.paths import IMAGE_SUFFIXES
from sbirbench.weights.files import file_sha256

BLOCK = 256  # photos embedded per forward pass
SAVE_EVERY = 60.0  # seconds between two saves of a growing index
HNSW_NEIGHBOURS, HNSW_SEARCH_DEPTH = 32, 128  # faiss graph degree and efSearch


@dataclass
class Model:
    """A run's trained method, ready to embed, and its fingerprint."""

    method: Method
    transform: Any
    fingerprint: dict[str, Any]

    def embed(self, images: list[Image.Image], modality: Modality) -> np.ndarray:
        batch = torch.stack([self.transform(image.convert("RGB")) for image in images])
        with torch.inference_mode():
            out = self.method.embed(batch, modality)
        return torch.nn.functional.normalize(out.float(), dim=-1).numpy()


def load_model(run: Path) -> Model:
    """The method saved in a run folder (its ``checkpoint.pt``), on the CPU."""
    path = run / "checkpoint.pt" if run.is_dir() else run
    saved = load_saved(path)
    method = rebuild(saved, resolve_saved(saved["config"], RunOptions(method="-", device="cpu")))
    method.model().eval()
    inputs = method.input_spec()
    fingerprint = {"checkpoint_sha256": file_sha256(path), "inputs": inputs.as_dict()}
    return Model(method, eval_transform(inputs), fingerprint)


def photo_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every image under ``folder``: relative path -> (size, modification time in ns)."""
    if not folder.is_dir():
        raise UserError(f"no photo folder {folder}")
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            stat = path.stat()
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    if not found:
        raise UserError(f"no images under {folder}")
    return found


@dataclass
class Index:
    """Embeddings of a photo folder under one model."""

    meta: dict[str, Any]
    paths: list[str]
    stamps: list[tuple[int, int]]
    features: np.ndarray

    def save(self, path: Path) -> None:
        def write(handle: Any) -> None:
            np.savez(
                handle,
                meta=np.array(json.dumps(self.meta)),
                paths=np.array(self.paths, dtype=str),
                stamps=np.array(self.stamps, dtype=np.int64).reshape(-1, 2),
                features=self.features.astype(np.float32),
            )

        atomic.atomic_write(path, write)

    @classmethod
    def load(cls, path: Path) -> Index:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    json.loads(str(data["meta"])),
                    [str(p) for p in data["paths"]],
                    [(int(a), int(b)) for a, b in data["stamps"]],
                    data["features"],
                )
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"cannot read index {path}: {exc}") from None


def build_index(run: Path, photos: Path, out: Path, log: Any = print) -> dict[str, int]:
    """Embed the photos under ``photos`` with ``run``'s model into ``out``, reusing the
    embeddings of unchanged photos from an earlier index of the same model."""
    model = load_model(run)
    files = photo_files(photos)
    meta = {"run": str(run.resolve()), "photos": str(photos.resolve()), **model.fingerprint}
    kept: dict[str, tuple[tuple[int, int], np.ndarray]] = {}
    if out.is_file():
        old = Index.load(out)
        same = {k: old.meta.get(k) for k in model.fingerprint} == model.fingerprint
        if same and old.meta.get("photos") == meta["photos"]:
            for i, (name, stamp) in enumerate(zip(old.paths, old.stamps, strict=True)):
                if files.get(name) == stamp:
                    kept[name] = (stamp, old.features[i])
    todo = [name for name in files if name not in kept]
    log(f"{len(files)} photos: {len(kept)} unchanged, {len(todo)} to embed")
    saved_at = time.monotonic()
    for start in range(0, len(todo), BLOCK):
        names = todo[start : start + BLOCK]
        images = []
        for name in names:
            try:
                with Image.open(photos / name) as image:
                    images.append(image.convert("RGB"))
            except OSError:
                log(f"skipped unreadable image {name}")
                files.pop(name)
        names = [n for n in names if n in files]
        if names:
            for name, feature in zip(names, model.embed(images, "photo"), strict=True):
                kept[name] = (files[name], feature)
        if time.monotonic() - saved_at >= SAVE_EVERY:  # an interrupted build resumes here
            _snapshot(meta, kept, files, out)
            saved_at = time.monotonic()
    _snapshot(meta, kept, files, out)
    return {"photos": len(files), "embedded": len(todo), "reused": len(files) - len(todo)}


def _snapshot(
    meta: dict[str, Any],
    kept: dict[str, tuple[tuple[int, int], np.ndarray]],
    files: dict[str, tuple[int, int]],
    out: Path,
) -> None:
    names = [n for n in files if n in kept]
    features = np.stack([kept[n][1] for n in names]) if names else np.zeros((0, 0), np.float32)
    stamped = {**meta, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Index(stamped, names, [kept[n][0] for n in names], features).save(out)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise UserError("faiss is an optional extra: pip install 'sbirbench[search]'") from None
    return faiss


def write_faiss(index_path: Path) -> Path:
    """An HNSW graph (inner product) over the index's embeddings, beside it."""
    faiss = _faiss()
    index = Index.load(index_path)
    graph = faiss.IndexHNSWFlat(
        index.features.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT
    )
    graph.add(np.ascontiguousarray(index.features, dtype=np.float32))
    target = index_path.with_suffix(".faiss")
    atomic.atomic_write(target, lambda handle: handle.write(faiss.serialize_index(graph).tobytes()))
    return target


def nearest(features: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k rows of ``features`` by inner product with ``query``, best first."""
    scores = features @ query
    k = max(0, min(k, len(scores)))
    top = np.argpartition(-scores, k - 1)[:k] if 0 < k < len(scores) else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")][:k]


def load_faiss(index_path: Path) -> Any:
    """The faiss graph :func:`write_faiss` wrote beside the index."""
    faiss = _faiss()
    path = index_path.with_suffix(".faiss")
    if not path.is_file():
        raise UserError(f"no faiss graph {path}; build it with sbirbench index ... --faiss")
    return faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))


def nearest_faiss(graph: Any, query: np.ndarray, k: int) -> np.ndarray:
    """Approximate top-k from a faiss graph of :func:`load_faiss`."""
    graph.hnsw.efSearch = max(HNSW_SEARCH_DEPTH, k)
    _, found = graph.search(query[None, :].astype(np.float32), k)
    return found[0][found[0] >= 0]


class Searcher:
    """An index and the model that built it, loaded once, answering sketch queries."""

    def __init__(self, index_path: Path, engine: str = "exact") -> None:
        self.index = Index.load(index_path)
        run = Path(self.index.meta["run"])
        self.model = load_model(run)
        if self.model.fingerprint["checkpoint_sha256"] != self.index.meta.get("checkpoint_sha256"):
            raise UserError(
                f"{index_path} was built with another version of {run}; build it again "
                "(sbirbench index)"
            )
        self.photos = Path(self.index.meta["photos"])
        self.graph = load_faiss(index_path) if engine == "faiss" else None

    def query(self, sketch: Image.Image, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` photos most similar to ``sketch`` (cosine), best first."""
        query = self.model.embed([sketch.convert("RGB")], "sketch")[0]
        features = self.index.features
        top = (
            nearest_faiss(self.graph, query, k)
            if self.graph is not None
            else nearest(features, query, k)
        )
        scores = features[top] @ query
        return [
            (os.fspath(self.photos / self.index.paths[i]), float(v))
            for i, v in zip(top, scores, strict=True)
        ]


def search(
    index_path: Path, sketch: Path, k: int = 10, engine: str = "exact"
) -> list[tuple[str, float]]:
    """The ``k`` photos of the index most similar to the sketch file, best first."""
    searcher = Searcher(index_path, engine)
    try:
        with Image.open(sketch) as image:
            image.load()
    except OSError as exc:
        raise UserError(f"cannot read sketch {sketch}: {exc}") from None
    return searcher.query(image, k)


def write_grid(sketch: Path, found: list[tuple[str, float]], out: Path, size: int = 128) -> None:
    """The sketch, then the photos found with their scores, in one row (PNG)."""
    from PIL import ImageDraw

    tiles = [(sketch, "query")] + [(Path(p), f"{s:+.3f}") for p, s in found]
    canvas = Image.new("RGB", (size * len(tiles), size + 16), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (path, label) in enumerate(tiles):
        try:
            with Image.open(path) as image:
                canvas.paste(image.convert("RGB").resize((size, size)), (i * size, 0))
        except OSError:
            label = "unreadable"
        draw.text((i * size + 4, size + 2), label, fill="black")
    atomic.atomic_write(out, lambda handle: canvas.save(handle, format="PNG"))
