"""The installed package: every source folder with an ``__init__.py`` is listed in
pyproject's packages, so that a non-editable install (CI's import check, users' wheels)
carries it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_installed():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"sbirbench": ROOT / "sbirbench", **{
        name: ROOT / folder for name, folder in setup["package-dir"].items()}}  # fmt: skip
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            if "__pycache__" not in parts and "templates" not in parts:
                found.add(".".join((name, *parts)))
    missing = sorted(found - set(setup["packages"]))
    assert not missing, f"add to [tool.setuptools] packages: {missing}"
