"""``tuberlin``: TU-Berlin sketches (Eitz et al. 2012) with the TU-Berlin Extended photos
(Zhang et al. 2016)."""

from __future__ import annotations

from typing import ClassVar

from .file_dataset import FileDataset
from .names import shipped_list


class TUBerlin(FileDataset):
    """250 classes; split ``zeroshot`` = the 30 standard unseen classes (tuberlin-30)."""

    name: ClassVar[str] = "tuberlin"
    title: ClassVar[str] = "TU-Berlin"
    splits: ClassVar[tuple[str, ...]] = ("zeroshot",)
    folder_names: ClassVar[tuple[str, ...]] = ("TU-Berlin", "TUBerlin", "tuberlin")
    layouts: ClassVar[tuple[str, ...]] = ("sketches-images", "tvt", "file-lists")

    def all_classes(self) -> list[str]:
        return shipped_list("tuberlin_classes.txt")

    def unseen_names(self) -> list[str]:
        return shipped_list(f"tuberlin_{self.split}.txt")
