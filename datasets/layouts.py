"""Recognising the folder layouts users have, and indexing their files fast.

Folder layouts are indexed with ``os.scandir`` (no image is opened) and the index is
cached, keyed by the class folders' modification times. File-list layouts (SAKE,
ZSE-SBIR) are read from their lists.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sbirbench.config import config_hash
from sbirbench.errors import UserError
from sbirbench.runtime import atomic
from sbirbench.runtime.paths import cache_dir

from .images import IMAGE_SUFFIXES
from .names import normalize

INDEX_VERSION = 2  # 2: links leading outside the data root are skipped

#: Folder layouts: name -> (sketch folders, photo folders) relative to the data-set root.
FOLDER_LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "sketchy-database": (
        ("sketch/tx_000000000000",),
        ("photo/tx_000000000000", "extended_photo", "EXTEND_image_sketchy"),
        "Sketchy database: sketch/tx_000000000000/<class>, "
        "photo/tx_000000000000/<class> (+ extended_photo/<class>)",
    ),
    "sketches-images": (
        ("sketches",),
        ("images",),
        "SEM-PCYC / QuickDraw Extended: sketches/<class>, images/<class>",
    ),
    "tvt": (("sketch",), ("photo",), "TVT/PSKD: sketch/<class>, photo/<class>"),
    "pskd-sketchy": (
        ("sketch",),
        ("photo/tx_000000000000", "extended_photo"),
        "PSKD's Sketchy: sketch/<class>, photo/tx_000000000000/<class>",
    ),
}
FILE_LISTS = "file-lists"
FILE_LISTS_TEXT = (
    "SAKE/ZSE-SBIR file lists: <split folder>/cname_cid.txt, cname_cid_zero.txt, "
    "*_filelist_{train,zero}.txt"
)


@dataclass
class Index:
    """What was found: per modality and normalised class, the image paths; and for file
    lists, per subset too."""

    layout: str
    root: Path
    description: str
    # folder layouts: modality -> class -> paths; file lists: (subset, modality) -> ...
    files: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    folder_names: dict[str, str] = field(default_factory=dict)  # normalised -> on disk
    notes: list[str] = field(default_factory=list)
    cached: bool = False


def candidates(root: Path, folder_names: Iterable[str]) -> list[Path]:
    """The root and any child folder named like the data set (case-insensitive)."""
    wanted = {normalize(n) for n in folder_names}
    found = [root]
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.is_dir() and normalize(entry.name) in wanted:
                    found.append(Path(entry.path))
    except OSError:
        pass
    return found


def _inside(entry: os.DirEntry[str], root: str) -> bool:
    """A symbolic link counts only when it leads to a place inside the data root."""
    return not entry.is_symlink() or os.path.realpath(entry.path).startswith(root)


def _class_dirs(folder: Path, root: str) -> dict[str, Path]:
    with os.scandir(folder) as entries:
        return {
            normalize(e.name): Path(e.path)
            for e in entries
            if e.is_dir() and not e.name.startswith(".") and _inside(e, root)
        }


def _images(folder: Path, root: str) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(
            e.path
            for e in entries
            if not e.name.startswith(".")
            and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
            and e.is_file()
            and _inside(e, root)
        )


def detect_folders(root: Path, layout: str) -> tuple[list[Path], list[Path]] | str | None:
    """The sketch and photo folders of ``layout`` under ``root``; a message when only one
    modality is there; None when the layout does not apply."""
    sketch_rel, photo_rel, _ = FOLDER_LAYOUTS[layout]
    sketches = [root / rel for rel in sketch_rel if (root / rel).is_dir()]
    photos = [root / rel for rel in photo_rel if (root / rel).is_dir()]
    if layout in ("tvt", "pskd-sketchy"):  # sketch/<class>, not sketch/tx_000000000000
        sketches = [p for p in sketches if not (p / "tx_000000000000").is_dir()]
    if layout == "tvt":
        photos = [p for p in photos if not (p / "tx_000000000000").is_dir()]
    if sketches and photos:
        return sketches, photos
    if sketches or photos:
        have, missing = ("sketches", photo_rel[0]) if sketches else ("photos", sketch_rel[0])
        return f"found {have} at {(sketches or photos)[0]} but no {root / missing}"
    return None


def index_folders(
    root: Path, layout: str, sketch_dirs: list[Path], photo_dirs: list[Path], use_cache: bool
) -> Index:
    """Index the class folders of a folder layout (cached by folder modification times)."""
    class_dirs: dict[str, dict[str, list[Path]]] = {"sketch": {}, "photo": {}}
    names: dict[str, str] = {}
    inside = os.path.join(os.path.realpath(root), "")
    for modality, tops in (("sketch", sketch_dirs), ("photo", photo_dirs)):
        for top in tops:
            for name, folder in _class_dirs(top, inside).items():
                class_dirs[modality].setdefault(name, []).append(folder)
                names.setdefault(name, folder.name)
    stamps = sorted(
        (str(f), f.stat().st_mtime_ns)
        for dirs in class_dirs.values()
        for folders in dirs.values()
        for f in folders
    )
    key = config_hash(
        {"version": INDEX_VERSION, "root": str(root.resolve()), "layout": layout, "stamps": stamps}
    )
    cache_file = cache_dir("index") / f"{key[:32]}.json"
    description = FOLDER_LAYOUTS[layout][2]
    if use_cache and cache_file.is_file():
        try:
            files = json.loads(cache_file.read_text())
            return Index(layout, root, description, files, names, cached=True)
        except ValueError:
            pass
    files = {
        modality: {
            name: [p for folder in folders for p in _images(folder, inside)]
            for name, folders in dirs.items()
        }
        for modality, dirs in class_dirs.items()
    }
    if use_cache:
        atomic.write_text(cache_file, json.dumps(files))
    return Index(layout, root, description, files, names)


# --------------------------------------------------------------------------- file lists
def _read_pairs(path: Path) -> list[tuple[str, int]]:
    """``<text possibly with spaces> <integer>`` lines (the label is the last token)."""
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        text, _, label = line.rstrip().rpartition(" ")
        try:
            pairs.append((text.strip(), int(label)))
        except ValueError:
            raise UserError(
                f"{path}:{number}: expected '<path or class> <integer>', got '{line.strip()}'"
            ) from None
    return pairs


def list_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself and one level down) holding ``cname_cid_zero.txt``."""
    found = [root] if (root / "cname_cid_zero.txt").is_file() else []
    with contextlib.suppress(OSError):
        found += sorted(p for p in root.iterdir() if (p / "cname_cid_zero.txt").is_file())
    return found


def unseen_of_list_folder(folder: Path) -> set[str]:
    return {normalize(name) for name, _ in _read_pairs(folder / "cname_cid_zero.txt")}


def index_file_lists(folder: Path) -> Index:
    """Read a SAKE/ZSE-SBIR split folder: paths are relative to its parent; ``*train*``
    labels index ``cname_cid.txt`` and ``*zero*`` labels ``cname_cid_zero.txt``."""
    root = folder.parent
    seen = (
        [normalize(n) for n, _ in sorted(_read_pairs(folder / "cname_cid.txt"), key=lambda p: p[1])]
        if (folder / "cname_cid.txt").is_file()
        else []
    )
    zero = [
        normalize(n)
        for n, _ in sorted(_read_pairs(folder / "cname_cid_zero.txt"), key=lambda p: p[1])
    ]
    files: dict[str, dict[str, list[str]]] = {}
    notes = []
    inside = os.path.join(os.path.abspath(root), "")  # "--data-root ." too
    for list_file in sorted(folder.glob("*.txt")):
        stem = list_file.stem.lower()
        if stem.startswith("cname_cid"):
            continue
        subset = "train" if "train" in stem else "test" if "zero" in stem else None
        modality = (
            "sketch"
            if "sketch" in stem or "png" in stem
            else "photo"
            if "photo" in stem or "image" in stem
            else None
        )
        if subset is None or modality is None:
            notes.append(f"ignored {list_file.name}")
            continue
        names = seen if subset == "train" else zero
        bucket = files.setdefault(f"{subset}/{modality}", {})
        for rel, label in _read_pairs(list_file):
            path = os.path.normpath(os.path.join(root, rel))
            if not os.path.abspath(path).startswith(inside):
                raise UserError(f"{list_file}: '{rel}' points outside the data root {root}")
            if not 0 <= label < len(names):
                raise UserError(
                    f"{list_file}: label {label} is outside "
                    f"{'cname_cid.txt' if subset == 'train' else 'cname_cid_zero.txt'}"
                    f" ({len(names)} classes)"
                )
            bucket.setdefault(names[label], []).append(path)
    for bucket in files.values():  # two lists of one subset and modality: no duplicates
        for name, paths in bucket.items():
            bucket[name] = list(dict.fromkeys(paths))
    return Index(
        FILE_LISTS, root, f"{FILE_LISTS_TEXT} (split folder {folder.name})", files, notes=notes
    )
