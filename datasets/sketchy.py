"""``sketchy``: Sketchy / Sketchy Extended (Sangkloy et al. 2016; Liu et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from .file_dataset import FileDataset, FileDatasetConfig
from .names import normalize, shipped_list


@dataclass(frozen=True)
class SketchyConfig(FileDatasetConfig):
    """``exclude_outliers`` drops the 12 outlier sketches the TVT/PSKD code drops."""

    exclude_outliers: bool = True


class Sketchy(FileDataset):
    """125 classes; split ``zeroshot`` = 21 unseen (sketchy-21), ``random`` = 25 (sketchy-25).
    Photos are those of the Sketchy database plus, where present, the Extended ones."""

    name: ClassVar[str] = "sketchy"
    title: ClassVar[str] = "Sketchy"
    Config = SketchyConfig
    config: SketchyConfig
    splits: ClassVar[tuple[str, ...]] = ("zeroshot", "random")
    folder_names: ClassVar[tuple[str, ...]] = ("Sketchy", "Sketchy_extended", "sketchy")
    layouts: ClassVar[tuple[str, ...]] = ("sketchy-database", "pskd-sketchy", "tvt", "file-lists")

    def all_classes(self) -> list[str]:
        return shipped_list("sketchy_classes.txt")

    def unseen_names(self) -> list[str]:
        return shipped_list(f"sketchy_{self.split}.txt")

    @cached_property
    def _outliers(self) -> set[tuple[str, str]]:
        pairs = (line.split("/", 1) for line in shipped_list("sketchy_outliers.txt"))
        return {(normalize(cls), name) for cls, name in pairs}

    def excluded(self, modality: str, name: str, path: str) -> bool:
        return (
            self.config.exclude_outliers
            and modality == "sketch"
            and (name, Path(path).name) in self._outliers
        )
