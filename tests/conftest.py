"""Shared fixtures: an isolated cache folder, and a fresh plugin set per test that asks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SKETCHY_MINI = SHARED / "data" / "sketchy-mini"


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep caches (synthetic data, features) out of the user's home during tests."""
    os.environ["SBIRBENCH_CACHE"] = str(tmp_path_factory.mktemp("sbirbench-cache"))


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch):
    """Reload plugins for this test and again after it (so changes never leak)."""
    from sbirbench import plugins

    plugins.reset_plugins()
    yield plugins
    plugins.reset_plugins()
