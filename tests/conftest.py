"""Shared fixtures: an isolated cache folder, and a fresh plugin set per test that asks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SKETCHY_MINI = SHARED / "data" / "sketchy-mini"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "result.schema.json"


@pytest.fixture(scope="session")
def result_validator():
    """A JSON Schema validator of docs/result.schema.json."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(autouse=True)
def _results_follow_the_schema(tmp_path: Path, result_validator):
    """Every result sbirbench writes in a test (result.json, eval-*.json) is validated
    against the schema after the test."""
    yield
    for path in [*tmp_path.rglob("result.json"), *tmp_path.rglob("eval-*.json")]:
        if path.name.endswith(".per_query.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except ValueError:  # broken files written on purpose by a test
            continue
        # hand-written files of tests (older schemas, broken on purpose) carry no package
        # versions; every result sbirbench writes does
        if not isinstance(data, dict) or "versions" not in data:
            continue
        errors = sorted(result_validator.iter_errors(data), key=lambda e: list(e.path))
        assert not errors, f"{path}: {errors[0].message} at {list(errors[0].path)}"


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep caches (synthetic data, features) out of the user's home during tests."""
    os.environ["SBIRBENCH_CACHE"] = str(tmp_path_factory.mktemp("sbirbench-cache"))


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch):
    """Reload plugins for this test and again after it (so changes never leak)."""
    from sbirbench.plugins import manager as plugins

    plugins.reset_plugins()
    yield plugins
    plugins.reset_plugins()
