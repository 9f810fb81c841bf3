"""The common part of the file-based data sets (sketchy, tuberlin, quickdraw, folder).

A data set is found under ``--data-root`` (or ``$SBIRBENCH_DATA``, where it may sit in a
sub-folder named like the data set, e.g. ``$SBIRBENCH_DATA/TU-Berlin``); each accepted
layout is tried in order and the one found is reported. Classes are matched through
:func:`sbirbench.datasets.names.normalize`.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from sbirbench.console import output
from sbirbench.errors import UserError
from sbirbench.interfaces import DatasetConfig, Item, ItemRef, Modality, SBIRDataset, Subset

from . import layouts
from .images import open_rgb
from .layouts import Index
from .names import normalize

DATA_ENV = "SBIRBENCH_DATA"
MODALITIES: tuple[Modality, Modality] = ("sketch", "photo")


@dataclass(frozen=True)
class FileDatasetConfig(DatasetConfig):
    """Options of the file-based data sets."""

    index_cache: bool = True


class FileDataset(SBIRDataset):
    """Images on disk in one of several layouts, with a seen/unseen class split."""

    Config = FileDatasetConfig
    config: FileDatasetConfig
    title: ClassVar[str] = ""
    folder_names: ClassVar[tuple[str, ...]] = ()
    layouts: ClassVar[tuple[str, ...]] = ("tvt",)

    def __init__(self, config: FileDatasetConfig) -> None:
        super().__init__(config)
        self.root = self._root()
        self.index = self._find()
        self._build()

    # ------------------------------------------------------------------ to override
    def all_classes(self) -> list[str] | None:
        """Every class of the data set (None: whatever is on disk)."""
        return None

    @abstractmethod
    def unseen_names(self) -> list[str]:
        """The unseen classes of ``self.split``."""

    def excluded(self, modality: Modality, name: str, path: str) -> bool:
        """Whether an image is left out (e.g. Sketchy's outlier sketches)."""
        return False

    # ------------------------------------------------------------------ finding
    def _root(self) -> Path:
        given = self.config.data_root or os.environ.get(DATA_ENV)
        if not given:
            raise UserError(
                f"no data root for {self.name}: pass --data-root PATH or set "
                f"{DATA_ENV} (see README, Data)"
            )
        root = Path(given).expanduser()
        if not root.is_dir():
            raise UserError(f"data root {root} does not exist")
        return root

    def _find(self) -> Index:
        tried: list[str] = []
        problems: list[str] = []
        for folder in layouts.candidates(self.root, self.folder_names):
            for layout in self.layouts:
                if layout == layouts.FILE_LISTS:
                    found = self._find_lists(folder, problems)
                    if found is not None:
                        return found
                    tried.append(f"{layout} in {folder}")
                    continue
                match = layouts.detect_folders(folder, layout)
                if isinstance(match, str):
                    problems.append(match)
                elif match is not None:
                    return layouts.index_folders(
                        folder, layout, *match, use_cache=self.config.index_cache
                    )
                tried.append(f"{layout} in {folder}")
        expected = "; ".join(
            layouts.FOLDER_LAYOUTS[name][2]
            if name in layouts.FOLDER_LAYOUTS
            else layouts.FILE_LISTS_TEXT
            for name in self.layouts
        )
        detail = f" ({problems[0]})" if problems else ""
        raise UserError(
            f"no {self.title or self.name} layout found under {self.root}{detail}; "
            f"tried {', '.join(tried)}; expected one of: {expected}"
        )

    def _find_lists(self, folder: Path, problems: list[str]) -> Index | None:
        options = layouts.list_folders(folder)
        if not options:
            return None
        unseen = {normalize(n) for n in self.unseen_names()}
        for option in options:
            if layouts.unseen_of_list_folder(option) == unseen:
                return layouts.index_file_lists(option)
        found = ", ".join(
            f"{o.name}: {len(layouts.unseen_of_list_folder(o))} unseen" for o in options
        )
        problems.append(
            f"file lists in {folder} ({found}) but none has the {len(unseen)} "
            f"unseen classes of split '{self.split}'"
        )
        return None

    # ------------------------------------------------------------------ classes and items
    def _build(self) -> None:
        index = self.index
        unseen = [normalize(n) for n in self.unseen_names()]
        everything = self.all_classes()
        if index.layout == layouts.FILE_LISTS:
            on_disk = {c for files in index.files.values() for c in files}
        else:
            on_disk = set(index.files["sketch"]) | set(index.files["photo"])
        names = [normalize(n) for n in everything] if everything is not None else sorted(on_disk)
        spelled = dict(
            zip(names, everything or [index.folder_names.get(n, n) for n in names], strict=True)
        )
        missing_unseen = [n for n in unseen if n not in names]
        if missing_unseen:
            raise UserError(
                f"unseen classes of split '{self.split}' are not classes of "
                f"{self.name}: {', '.join(missing_unseen)}"
            )
        self._seen = [n for n in names if n not in set(unseen)]
        self._unseen = unseen
        self.display = spelled
        self.unknown_folders = sorted(on_disk - set(names))
        self.missing_classes: list[str] = []
        self.empty_classes: list[str] = []
        self.excluded_count = 0
        self._items: dict[tuple[str, str], list[Item]] = {}
        for subset, classes in (("train", self._seen), ("test", self._unseen)):
            for modality in MODALITIES:
                self._items[(subset, modality)] = self._collect(subset, modality, classes)
        for name in unseen:
            for modality in MODALITIES:
                if not any(lbl == unseen.index(name) for _, lbl in self._items[("test", modality)]):
                    why = "no class folder" if name not in on_disk else "its folder has no images"
                    plural = "sketches" if modality == "sketch" else "photos"
                    raise UserError(
                        f"unseen class '{spelled[name]}' of split '{self.split}' "
                        f"has no {plural} under {self.index.root} ({why})"
                    )
        if self.missing_classes:
            output().warn(
                f"{self.name}: {len(self.missing_classes)} seen classes are missing "
                f"under {index.root}: {', '.join(self.missing_classes[:8])}"
                + (" ..." if len(self.missing_classes) > 8 else "")
            )

    def _collect(self, subset: str, modality: Modality, classes: list[str]) -> list[Item]:
        if self.index.layout == layouts.FILE_LISTS:
            files = self.index.files.get(f"{subset}/{modality}", {})
        else:
            files = self.index.files[modality]
        items: list[Item] = []
        for label, name in enumerate(classes):
            paths = files.get(name)
            if paths is None:
                if name not in self.missing_classes and (subset == "train"):
                    self.missing_classes.append(name)
                continue
            kept = [p for p in paths if not self.excluded(modality, name, p)]
            self.excluded_count += len(paths) - len(kept)
            if not kept and name not in self.empty_classes:
                self.empty_classes.append(name)
            items.extend((p, label) for p in kept)
        return items

    # ------------------------------------------------------------------ the interface
    @property
    def seen_classes(self) -> list[str]:
        return [self.display[n] for n in self._seen]

    @property
    def unseen_classes(self) -> list[str]:
        return [self.display[n] for n in self._unseen]

    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        return self._items[(subset, modality)]

    def open(self, ref: ItemRef, modality: Modality) -> Image.Image:
        return open_rgb(str(ref))

    def describe(self) -> dict[str, Any]:
        counts = {
            subset: {
                modality: len(self._items[(subset, modality)]) for modality in ("sketch", "photo")
            }
            for subset in ("train", "test")
        }
        return {
            **super().describe(),
            "layout": self.index.layout,
            "layout_description": self.index.description,
            "root": str(self.index.root),
            "seen": len(self._seen),
            "unseen": len(self._unseen),
            "counts": counts,
            "missing_classes": [self.display[n] for n in self.missing_classes],
            "empty_classes": [self.display[n] for n in self.empty_classes],
            "unknown_folders": self.unknown_folders,
            "excluded": self.excluded_count,
            "index_cached": self.index.cached,
            "notes": self.index.notes,
        }
