"""Reports of a run: retrieval grid, per-class AP, training curves, and a Markdown page.

Written to ``<run>/report/`` by ``sbirbench report RUN`` (or ``sbirbench run --report``).
The retrieval grid re-embeds the test set with the run's model (the features come from
the cache the run's own evaluation filled, so usually no forward pass is needed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from sbirbench.errors import UserError
from sbirbench.interfaces import SBIRDataset
from sbirbench.pipeline.bind import bind
from sbirbench.pipeline.embedding import embed
from sbirbench.pipeline.options import RunOptions
from sbirbench.pipeline.resolve_saved import load_saved, rebuild, resolve_saved
from sbirbench.pipeline.store import RunStore
from sbirbench.results.result import read_result, rerank_label
from sbirbench.runtime import atomic, distributed

from .plots import bar_chart, font, line_chart

GREEN, RED = (40, 170, 60), (220, 40, 40)


def _save_png(path: Path, image: Image.Image) -> None:
    atomic.atomic_write(path, lambda handle: image.save(handle, format="PNG"))


def retrieval_grid(
    dataset: SBIRDataset,
    query_feats: torch.Tensor,
    query_labels: torch.Tensor,
    query_index: torch.Tensor,
    gallery_feats: torch.Tensor,
    gallery_labels: torch.Tensor,
    gallery_index: torch.Tensor,
    *,
    per_class: int = 2,
    top: int = 10,
    tile: int = 64,
    max_classes: int = 12,
) -> Image.Image:
    """Rows of: a query sketch, then its ``top`` photos with a green border when the photo
    is of the query's class and red otherwise."""
    names = dataset.unseen_classes
    sketches, photos = dataset.items("test", "sketch"), dataset.items("test", "photo")
    rows = []
    for label in range(min(len(names), max_classes)):
        rows += [i for i in range(len(query_labels)) if query_labels[i] == label][:per_class]
    q = F.normalize(query_feats[rows].float(), dim=1)
    g = F.normalize(gallery_feats.float(), dim=1)
    k = min(top, len(g))
    best = torch.topk(q @ g.T, k, dim=1).indices
    border, gap, label_w = 4, 6, 150
    cell = tile + 2 * border
    width = label_w + cell + gap * 3 + k * (cell + gap)
    grid = Image.new("RGB", (width, len(rows) * (cell + gap) + gap), "white")
    draw = ImageDraw.Draw(grid)
    small = font(12)
    for r, query in enumerate(rows):
        y = gap + r * (cell + gap)
        label = int(query_labels[query])
        draw.text((6, y + cell // 2 - 7), names[label][:20], fill="black", font=small)
        ref = sketches[int(query_index[query])][0]
        grid.paste(dataset.open(ref, "sketch").resize((tile, tile)), (label_w + border, y + border))
        for c, photo in enumerate(best[r].tolist()):
            x = label_w + cell + 3 * gap + c * (cell + gap)
            color = GREEN if int(gallery_labels[photo]) == label else RED
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=color)
            ref = photos[int(gallery_index[photo])][0]
            grid.paste(dataset.open(ref, "photo").resize((tile, tile)), (x + border, y + border))
    return grid


def curves_from_history(path: Path) -> tuple[dict[str, list[float]], list[int], list[str]]:
    """Loss parts per epoch, one series per stage and part (NaN outside its stage); a
    stage's total is left out when it has a single part (they are equal)."""
    if not path.is_file():
        return {}, [], []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    names: list[str] = []
    boundaries: list[int] = []
    for i, record in enumerate(records):
        if not names or names[-1] != record["stage"]:
            if names:
                boundaries.append(i)
            names.append(record["stage"])
    series: dict[str, list[float]] = {}
    for i, record in enumerate(records):
        parts = record["losses"]
        shown = {k: v for k, v in parts.items() if not (k == "loss" and len(parts) == 2)}
        for part, value in shown.items():
            key = f"{record['stage']} {part}"
            series.setdefault(key, [float("nan")] * len(records))[i] = value
    return series, boundaries, names


def _markdown(result: dict[str, Any], files: dict[str, str]) -> str:
    metrics = result["metrics"]
    lines = [
        f"# {result['method']} on {result['benchmark']} (run {result['run_id']})",
        "",
        "| | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
        "| float | " + " | ".join(f"{v:.4f}" for v in metrics.values()) + " |",
    ]
    if "reranked_metrics" in result:
        lines.append(
            f"| {rerank_label(result['rerank']['k'])} | "
            + " | ".join(f"{v:.4f}" for v in result["reranked_metrics"].values())
            + " |"
        )
    if "hashed_metrics" in result:
        lines.append(
            f"| {result['hash']['bits']}-bit | "
            + " | ".join(f"{v:.4f}" for v in result["hashed_metrics"].values())
            + " |"
        )
    conventions = result.get("conventions", {})
    lines += [
        "",
        f"AP convention: {result.get('ap')}; ties: {conventions.get('ties')}; "
        f"{result['queries']} queries x {result['gallery']} gallery, "
        f"{result['queries_without_positives']} queries without positives.",
        "",
    ]
    lines += [
        "## Retrieval",
        "",
        f"![retrieval grid]({files['grid']})",
        "",
        "Each row: a query sketch, then its ten nearest photos (green: same class).",
        "",
        "## Per-class AP",
        "",
        f"![per-class AP]({files['per_class']})",
        "",
        f"| class | {result.get('per_class_metric', 'AP')} |",
        "|---|---:|",
    ]
    for name, value in sorted(result["per_class_ap"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {value:.4f} |")
    lines += [
        "",
        "## Training",
        "",
        f"![training curves]({files['curves']})",
        "",
        "## Provenance",
        "",
    ]
    config = result.get("config", {})
    facts = {
        "run": result["run_id"],
        "method": result["method"],
        "preset": result.get("preset"),
        "overrides": ", ".join(result.get("overrides", [])) or "-",
        "data set": f"{result['dataset']} (split {result['split']})",
        "benchmark": f"{result['benchmark']} v{result.get('benchmark_version')}",
        "backbone": f"{result['backbone']} {config.get('backbone_config', {})}",
        "config hash": result["config_hash"],
        "seed": result["seed"],
        "world size": result["world_size"],
        "devices": ", ".join(result["devices"]),
        "precision": result["precision"],
        "versions": result["versions"],
        "git commit": result.get("git_commit"),
        "started": result.get("started"),
        "finished": result.get("finished"),
        "wall time (s)": result.get("wall_time"),
        "images/s": result.get("images_per_second"),
    }
    lines += [f"- **{key}**: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n"


def pr_curve(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    points: int = 11,
    chunk: int = 256,
) -> tuple[list[float], list[float]]:
    """Interpolated precision (the best precision at recall >= r) at ``points`` recall
    levels, averaged over the queries that have a relevant photo (cosine ranking)."""
    q, g = F.normalize(queries.float(), dim=-1), F.normalize(gallery.float(), dim=-1)
    levels = torch.linspace(0, 1, points)
    total, count = torch.zeros(points), 0
    ranks = torch.arange(1, len(g) + 1, dtype=torch.float32)
    for start in range(0, len(q), chunk):
        order = (q[start : start + chunk] @ g.T).argsort(dim=1, descending=True)
        relevant = (query_labels[start : start + chunk, None] == gallery_labels[order]).float()
        found = relevant.sum(1)
        keep = found > 0
        hits = relevant.cumsum(1)[keep]
        recall = (hits / found[keep, None]).contiguous()
        best = (hits / ranks).flip(1).cummax(1).values.flip(1)  # max precision to the right
        at = torch.searchsorted(recall, levels.expand(len(recall), -1).contiguous())
        total += best.gather(1, at.clamp(max=len(g) - 1)).sum(0)
        count += int(keep.sum())
    return levels.tolist(), (total / max(count, 1)).tolist()


def write_report(
    run: Path,
    *,
    per_class: int = 2,
    tile: int = 64,
    data_root: str | None = None,
    html: bool = False,
) -> Path:
    """Write ``report/`` for a run folder (and ``report/index.html``, one self-contained
    page, with ``html``); returns the Markdown file, or the page."""
    paths = RunStore(Path(run), writer=False)
    result = read_result(paths.result)
    saved = load_saved(paths.model)
    options = RunOptions(
        method="-", data_root=data_root or saved["config"].get("data_root"), device="cpu"
    )
    spec = resolve_saved(saved["config"], options)
    dataset = bind(spec).dataset  # under the run's protocol (a GZS or cross-data-set view)
    if set(dataset.unseen_classes) != set(result["per_class_ap"]):
        raise UserError(
            f"the data set found at {dataset.describe().get('root')} does not have "
            "the run's unseen classes"
        )
    method = rebuild(saved, spec)
    context = distributed.Context()
    key = result.get("model_sha256")
    queries = embed(method, dataset, "sketch", context=context, cache_key=key)
    gallery = embed(method, dataset, "photo", context=context, cache_key=key)
    folder = paths.root / "report"
    files = {"grid": "retrieval.png", "per_class": "per_class_ap.png", "curves": "training.png"}
    _save_png(
        folder / files["grid"],
        retrieval_grid(
            dataset,
            queries.features,
            queries.labels,
            queries.indices,
            gallery.features,
            gallery.labels,
            gallery.indices,
            per_class=per_class,
            tile=tile,
        ),
    )
    ranked = sorted(result["per_class_ap"].items(), key=lambda kv: -kv[1])
    _save_png(
        folder / files["per_class"],
        bar_chart(
            [k for k, _ in ranked],
            [v for _, v in ranked],
            f"{result.get('per_class_metric', 'AP')} per unseen class",
        ),
    )
    series, boundaries, names = curves_from_history(paths.history)
    _save_png(
        folder / files["curves"],
        line_chart(series, "training loss per epoch", boundaries=boundaries, names=names),
    )
    markdown = folder / "report.md"
    atomic.write_text(markdown, _markdown(result, files))
    if not html:
        return markdown
    from .html import run_page

    _, precision = pr_curve(queries.features, queries.labels, gallery.features, gallery.labels)
    _save_png(
        folder / "pr.png",
        line_chart({"precision": precision}, "interpolated precision at recall 0, 0.1, ..., 1"),
    )
    pictures = {k: folder / v for k, v in {**files, "pr": "pr.png"}.items()}
    page = folder / "index.html"
    atomic.write_text(page, run_page(result, pictures))
    return page
