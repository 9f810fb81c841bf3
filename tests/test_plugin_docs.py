"""docs/plugins.md: its worked example installs as a package and runs end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from .cli_helpers import pip_install_offline

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def example_files() -> dict[str, str]:
    """The example's files: code blocks whose first line is ``# <path>``."""
    return dict(re.findall(r"```(?:python|toml)\n# (\S+)\n(.*?)```", DOC.read_text(), re.S))


def test_the_worked_example_is_about_fifty_lines():
    files = example_files()
    assert set(files) == {
        "pyproject.toml",
        "sbirbench_cosface/__init__.py",
        "sbirbench_cosface/method.py",
    }
    python = sum(len(code.splitlines()) for name, code in files.items() if name.endswith(".py"))
    assert 40 <= python <= 60
    assert f"{python} lines of Python" in DOC.read_text()


def test_the_worked_example_installs_and_runs(tmp_path):
    package = tmp_path / "package"
    for name, code in example_files().items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(code)
    site = tmp_path / "site"
    env = pip_install_offline(package, site)
    listed = subprocess.run(
        [sys.executable, "-m", "sbirbench", "list", "methods"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "cosface" in listed.stdout
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbirbench",
            "run",
            "cosface",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--set",
            "dataset.sketches_per_class=8",
            "--set",
            "dataset.photos_per_class=8",
            "--set",
            "backbone.img_size=32",
            "--out",
            str(tmp_path / "runs"),
            "--log-format",
            "jsonl",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "has no presets file" in run.stderr  # and says which file it looked for
    result = json.loads(next((tmp_path / "runs").rglob("result.json")).read_text())
    assert result["method"] == "cosface" and result["kind"] == "run"
    assert 0 < result["metrics"]["map@all"] <= 1
