"""``quickdraw``: QuickDraw Extended (Dey et al. 2019)."""

from __future__ import annotations

from typing import ClassVar

from .file_dataset import FileDataset
from .names import shipped_list


class QuickDraw(FileDataset):
    """110 classes; split ``zeroshot`` = the 30 unseen classes of Dey et al. (quickdraw-30)."""

    name: ClassVar[str] = "quickdraw"
    title: ClassVar[str] = "QuickDraw Extended"
    splits: ClassVar[tuple[str, ...]] = ("zeroshot",)
    folder_names: ClassVar[tuple[str, ...]] = ("QuickDraw", "quickdraw", "QuickDraw_Extended")
    layouts: ClassVar[tuple[str, ...]] = ("sketches-images", "tvt", "file-lists")

    def all_classes(self) -> list[str]:
        return shipped_list("quickdraw_classes.txt")

    def unseen_names(self) -> list[str]:
        return shipped_list(f"quickdraw_{self.split}.txt")
