"""Checking a data set on disk (every image decoded) and drawing a contact sheet."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from sbirbench.interfaces import Modality, SBIRDataset, Subset

MODALITIES: tuple[Modality, Modality] = ("sketch", "photo")


@dataclass
class CheckReport:
    """What ``sbirbench data check`` found."""

    facts: dict
    unreadable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems


def verify_images(
    dataset: SBIRDataset, progress: Callable[[int], None] | None = None, threads: int = 8
) -> list[str]:
    """Decode every image of the data set; the refs of those that fail."""
    jobs = [
        (ref, modality)
        for subset in ("train", "test")
        for modality in ("sketch", "photo")
        for ref, _ in dataset.items(subset, modality)
    ]

    def check(job) -> str | None:
        ref, modality = job
        try:
            dataset.open(ref, modality)
            return None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return str(ref)

    bad = []
    with ThreadPoolExecutor(threads) as pool:  # Pillow decodes outside the GIL
        for result in pool.map(check, jobs, chunksize=64):
            if result is not None:
                bad.append(result)
            if progress is not None:
                progress(1)
    return bad


def check(
    dataset: SBIRDataset, *, decode: bool, progress: Callable[[int], None] | None = None
) -> CheckReport:
    """Facts about ``dataset`` and whether it can be used for a benchmark run."""
    facts = dataset.describe()
    report = CheckReport(facts)
    if decode:
        report.unreadable = verify_images(dataset, progress)
    bad = set(report.unreadable)
    subsets: tuple[tuple[Subset, list[str]], ...] = (
        ("train", dataset.seen_classes),
        ("test", dataset.unseen_classes),
    )
    for subset, classes in subsets:
        for modality in MODALITIES:
            readable = [
                label for ref, label in dataset.items(subset, modality) if str(ref) not in bad
            ]
            if not readable:
                report.problems.append(f"no readable {subset} {modality}s")
                continue
            if subset == "test":
                present = set(readable)
                lost = [classes[c] for c in range(len(classes)) if c not in present]
                if lost:
                    report.problems.append(
                        f"unseen classes without readable {modality}s: {', '.join(lost)}"
                    )
    return report


def count_images(dataset: SBIRDataset) -> int:
    return sum(len(dataset.items(s, m)) for s in ("train", "test") for m in ("sketch", "photo"))


def contact_sheet(
    dataset: SBIRDataset,
    *,
    subset: Subset = "test",
    classes: list[str] | None = None,
    per_class: int = 4,
    size: int = 96,
) -> Image.Image:
    """One row per class: its name, ``per_class`` sketches, then ``per_class`` photos."""
    names = dataset.seen_classes if subset == "train" else dataset.unseen_classes
    chosen = classes or names
    unknown = [c for c in chosen if c not in names]
    if unknown:
        from sbirbench.errors import UserError

        raise UserError(f"not a {subset} class of {dataset.name}: {', '.join(unknown)}")
    label_width, gap = 160, 4
    width = label_width + 2 * per_class * (size + gap) + gap
    sheet = Image.new("RGB", (width, len(chosen) * (size + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, name in enumerate(chosen):
        label = names.index(name)
        top = gap + row * (size + gap)
        draw.text((gap, top + size // 2 - 6), name[:24], fill="black", font=font)
        for block, modality in enumerate(MODALITIES):
            refs = [ref for ref, lbl in dataset.items(subset, modality) if lbl == label]
            for i, ref in enumerate(refs[:per_class]):
                left = label_width + (block * per_class + i) * (size + gap) + gap
                try:
                    tile = dataset.open(ref, modality).resize((size, size))
                except (OSError, ValueError):
                    tile = Image.new("RGB", (size, size), (255, 200, 200))
                sheet.paste(tile, (left, top))
    return sheet


def export_images(
    dataset: SBIRDataset,
    subset: Subset,
    modality: Modality,
    out: Path,
    unreadable: list[str] | None = None,
) -> tuple[int, int]:
    """A subset's images as PNG files under ``out/<class>/`` (a photo folder to index, a
    sketch to search with). Files already there are kept, so an interrupted export
    resumes. An image that cannot be read is left out and named in ``unreadable``.
    Returns (written, kept)."""
    from sbirbench.runtime import atomic

    names = dataset.seen_classes if subset == "train" else dataset.unseen_classes
    written = kept = 0
    for number, (ref, label) in enumerate(dataset.items(subset, modality)):
        target = out / names[label] / f"{number:05d}-{Path(str(ref)).stem}.png"
        if target.is_file():
            kept += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            image = dataset.open(ref, modality).convert("RGB")
        except OSError:  # PIL's UnidentifiedImageError included
            if unreadable is not None:
                unreadable.append(str(ref))
            continue
        atomic.atomic_write(target, partial(image.save, format="PNG"))
        written += 1
    return written, kept
