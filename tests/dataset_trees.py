"""Tiny data-set trees in the layouts users have, for tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from sbirbench.datasets.names import shipped_list

SEEN_SAMPLE = 3  # seen classes put on disk besides every unseen class


def image(path: Path, mode: str = "RGB", color=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (8, 8), color)
    if mode == "L":
        img = img.convert("L")
    elif mode == "CMYK":
        img = img.convert("CMYK")
    elif mode == "P":
        img = img.convert("P")
    elif mode == "RGBA":
        img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
        img.putpixel((0, 0), (0, 0, 0, 255))
    img.save(path)
    return path


def classes_for(dataset: str, split: str) -> tuple[list[str], list[str]]:
    """(seen classes to write, unseen classes) with the data set's own spelling."""
    unseen = shipped_list(f"{dataset}_{split}.txt")
    everything = shipped_list(f"{dataset}_classes.txt")
    seen = [c for c in everything if c not in unseen][:SEEN_SAMPLE]
    return seen, unseen


def folder_tree(
    root: Path,
    sketch_dir: str,
    photo_dirs: list[str],
    classes: list[str],
    rename=lambda c: c,
    per_class: int = 1,
) -> None:
    for cls in classes:
        for i in range(per_class):
            image(root / sketch_dir / rename(cls) / f"s{i}.png", "L")
            for photo_dir in photo_dirs:
                image(root / photo_dir / rename(cls) / f"p{i}-{photo_dir.replace('/', '_')}.jpg")


def file_list_tree(
    root: Path,
    folder: str,
    seen: list[str],
    unseen: list[str],
    sketch_list: str,
    photo_list: str,
    with_train: bool = True,
) -> None:
    """SAKE/ZSE-SBIR: <root>/<folder>/cname_cid*.txt and *_filelist_{train,zero}.txt;
    paths relative to <root>."""
    split = root / folder
    split.mkdir(parents=True, exist_ok=True)
    (split / "cname_cid.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(seen)))
    (split / "cname_cid_zero.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(unseen)))
    for subset, names in (("train", seen), ("zero", unseen)):
        if subset == "train" and not with_train:
            continue
        for modality, list_name in (("sketch", sketch_list), ("photo", photo_list)):
            lines = []
            for label, cls in enumerate(names):
                rel = f"256x256/{modality}/{cls}/{modality[0]} {label}.png"  # a space, as in ZSE
                image(root / rel)
                lines.append(f"{rel} {label}\n")
            (split / list_name.format(subset=subset)).write_text("".join(lines))
