"""Run the real ``sbirbench`` entry point in-process (with its error handling) or as a
subprocess, and small run settings that keep CPU tests fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sbirbench.cli import main

#: 15 seen classes x 8 images: 15 steps of 8 photos per epoch; 5 x 8 test images.
SMALL = [
    "--set",
    "dataset.sketches_per_class=8",
    "--set",
    "dataset.photos_per_class=8",
    "--batch-size",
    "8",
    "--log-format",
    "quiet",
]


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]


def invoke(capsys, *args: str) -> Outcome:
    """``sbirbench ARGS`` in this process; exit code and captured output."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def spawn(*args: str, env: dict | None = None, timeout: float = 300) -> Outcome:
    """``python -m sbirbench ARGS`` as a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "sbirbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def pip_install_offline(source: Path, site: Path) -> dict[str, str]:
    """pip-install the package at ``source`` into ``site`` (no index, no dependencies, no
    build isolation); the environment that imports it first."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return {**os.environ, "PYTHONPATH": str(site)}


def only_run(out: Path, benchmark: str = "synthetic", method: str = "ce") -> Path:
    runs = sorted((out / benchmark / method).iterdir())
    assert len(runs) == 1, runs
    return runs[0]
