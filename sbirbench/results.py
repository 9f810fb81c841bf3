"""Run folders and result files: ``<out>/<benchmark>/<method>/<run-id>/``.

A run folder holds ``result.json`` (written atomically, last), ``config.json``,
``log.txt``, ``history.jsonl`` (loss parts per epoch), ``checkpoint.pt`` (the model for
``sbirbench eval``), ``checkpoints/last.pt`` (training state) and ``stages/<name>.pt``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sbirbench import atomic
from sbirbench.errors import UserError

SCHEMA = 1
RESULT = "result.json"
CONFIG = "config.json"


@dataclass(frozen=True)
class RunPaths:
    """The files of one run."""

    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def result(self) -> Path:
        return self.root / RESULT

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def per_query(self) -> Path:
        return self.root / "per_query.json"

    @property
    def model(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    def stage(self, name: str) -> Path:
        return self.root / "stages" / f"{name}.pt"


def new_run(out: Path, benchmark: str, method: str, config_hash: str) -> RunPaths:
    """A fresh run folder named by start time and config hash."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out / benchmark / method
    root = base / f"{stamp}-{config_hash[:8]}"
    suffix = 1
    while root.exists():
        suffix += 1
        root = base / f"{stamp}-{config_hash[:8]}-{suffix}"
    root.mkdir(parents=True)
    return RunPaths(root)


def runs_of(out: Path, benchmark: str, method: str, config_hash: str) -> list[RunPaths]:
    """Earlier runs of this configuration, oldest first."""
    base = out / benchmark / method
    if not base.is_dir():
        return []
    found = []
    for root in sorted(base.iterdir()):
        try:
            saved = json.loads((root / CONFIG).read_text())
        except (OSError, ValueError):
            continue
        if saved.get("config_hash") == config_hash:
            found.append(RunPaths(root))
    return found


def read_result(path: Path) -> dict[str, Any]:
    """A result file, or a run folder holding one."""
    path = Path(path)
    file = path / RESULT if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"no result at {path} (a run folder with {RESULT}, or the file itself)")
    try:
        data = json.loads(file.read_text())
    except ValueError as exc:
        raise UserError(f"{file} is not valid JSON: {exc}") from None
    if data.get("schema") != SCHEMA:
        raise UserError(f"{file} has result schema {data.get('schema')}, expected {SCHEMA}")
    return data


def find_results(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every result under ``root`` (skipping unreadable files)."""
    out = []
    for file in sorted(Path(root).rglob(RESULT)):
        try:
            out.append((file.parent, {**read_result(file), "run_dir": str(file.parent)}))
        except UserError:
            continue
    return out


def write_result(paths: RunPaths, result: dict[str, Any]) -> None:
    atomic.write_json(paths.result, {"schema": SCHEMA, **result})


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("sbirbench", "torch", "timm", "numpy", "torchvision"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str | None:
    """The commit of the sbirbench source tree (with ``+dirty``), when it is a checkout."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=source, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.strip() else "")


def devices(device: str) -> list[str]:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return [f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"]
