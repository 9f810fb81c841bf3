"""``folder``: bring your own data without writing a plugin.

``<root>/sketch/<class>/*`` and ``<root>/photo/<class>/*`` (or ``sketches``/``images``);
the unseen classes come from ``--set dataset.unseen=a,b,c`` (or a file of names), or a
seeded random choice of ``unseen_count`` classes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sbirbench.errors import UserError

from .file_dataset import FileDataset, FileDatasetConfig
from .names import normalize, read_names


@dataclass(frozen=True)
class FolderConfig(FileDatasetConfig):
    """``unseen``: comma list or a file of class names; else ``unseen_count`` at random."""

    unseen: str | None = None
    unseen_count: int | None = None
    seed: int = 0


class Folder(FileDataset):
    """Any sketch/photo tree; the split is given by the user."""

    name: ClassVar[str] = "folder"
    title: ClassVar[str] = "sketch/photo folder"
    Config = FolderConfig
    config: FolderConfig
    splits: ClassVar[tuple[str, ...]] = ("default",)
    layouts: ClassVar[tuple[str, ...]] = ("tvt", "sketches-images")

    def unseen_names(self) -> list[str]:
        config = self.config
        if config.unseen:
            path = Path(config.unseen).expanduser()
            if path.is_file():
                return read_names(path.read_text())
            return [n.strip() for n in config.unseen.split(",") if n.strip()]
        on_disk = sorted(set(self.index.files["sketch"]) & set(self.index.files["photo"]))
        if config.unseen_count is None:
            raise UserError(
                "folder: give the unseen classes with --set dataset.unseen=a,b,c "
                "(or a file of names), or --set dataset.unseen_count=N"
            )
        if not 0 < config.unseen_count < len(on_disk):
            raise UserError(
                f"folder: unseen_count must be between 1 and {len(on_disk) - 1} "
                f"(there are {len(on_disk)} classes with sketches and photos)"
            )
        return sorted(random.Random(config.seed).sample(on_disk, config.unseen_count))

    def _build(self) -> None:
        for name in self.unseen_names():
            if normalize(name) not in self.index.files["sketch"] | self.index.files["photo"]:
                raise UserError(
                    f"folder: unseen class '{name}' is not a folder under {self.index.root}"
                )
        super()._build()
