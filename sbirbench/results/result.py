"""Reading results: the typed :class:`Result`, schema versions, and finding result files.

``result.json`` follows the versioned JSON Schema ``docs/result.schema.json``
(``SCHEMA``). Older versions are read by upgrading them in memory (what they did not
record is marked unknown); a newer or unknown version is refused with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbirbench.errors import UserError

SCHEMA = 2
READABLE = (1, 2)
RESULT = "result.json"
CONFIG = "config.json"


class ResultFileError(UserError):
    """A result file that cannot be used (unreadable, malformed, unknown schema)."""


@dataclass(frozen=True)
class Result:
    """One result: what was measured and how (``data`` holds every recorded field)."""

    run_id: str
    kind: str
    method: str
    benchmark: str
    seed: int
    metrics: dict[str, float]
    hashed_metrics: dict[str, float] | None
    path: Path | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> Result:
        return cls(
            data["run_id"],
            data.get("kind", "run"),
            data["method"],
            data["benchmark"],
            int(data.get("seed", 0)),
            dict(data["metrics"]),
            data.get("hashed_metrics"),
            path,
            data,
        )

    @property
    def run_dir(self) -> Path | None:
        """The folder of the run (or of an evaluation's result file)."""
        return self.path.parent if self.path is not None else None

    @property
    def per_query(self) -> dict[str, float | None]:
        """Each query's value of the headline metric, by query file (from the file the
        result names; empty when it has none)."""
        name = self.data.get("per_query_file")
        if not name or self.run_dir is None or not (self.run_dir / name).is_file():
            return {}
        record = json.loads((self.run_dir / name).read_text())
        return dict(zip(record["queries"], record["values"], strict=True))

    @property
    def provenance(self) -> dict[str, Any]:
        """How the numbers were measured: protocol, conventions, inputs, weights, code,
        hardware, seed and time."""
        keys = (
            "benchmark",
            "benchmark_version",
            "dataset",
            "split",
            "conventions",
            "inputs",
            "initialisation",
            "model_selection",
            "seed",
            "config_hash",
            "versions",
            "git_commit",
            "devices",
            "world_size",
            "precision",
            "wall_time",
            "chance",
        )
        return {k: self.data[k] for k in keys if k in self.data}


def check_result(data: Any) -> str | None:
    """Why ``data`` cannot be used as a result (None when it can)."""
    if not isinstance(data, dict):
        return f"holds a JSON {type(data).__name__}, not an object"
    if data.get("schema") not in READABLE:
        return (
            f"has result schema {data.get('schema')!r}; this sbirbench reads schemas "
            f"{', '.join(map(str, READABLE))}"
        )
    for key in ("run_id", "method", "benchmark"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"has no '{key}'"
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return "has no 'metrics' object"
    bad = [k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        return f"has a metric that is not a number ({bad[0]}={metrics[bad[0]]!r})"
    for key, kinds, what in _OPTIONAL:
        if key in data and data[key] is not None and not isinstance(data[key], kinds):
            return f"has a '{key}' that is not {what}"
    if isinstance(data.get("seed"), bool):
        return "has a 'seed' that is not an integer"
    for key in _NUMBER_TABLES:  # the tables average these
        wrong = _not_a_number(data.get(key) or {})
        if wrong:
            return f"has a '{key}' value that is not a number ({wrong})"
    return None


#: Tables of numbers the leaderboard reads (``wall_time`` nests its stages).
_NUMBER_TABLES = (
    "chance",
    "hashed_metrics",
    "reranked_metrics",
    "wall_time",
    "images_per_second",
)


def _not_a_number(table: dict[str, Any], prefix: str = "") -> str | None:
    """The first ``key=value`` in ``table`` (nested tables included) that is not a number."""
    for key, value in table.items():
        if isinstance(value, dict):
            bad = _not_a_number(value, f"{prefix}{key}.")
            if bad:
                return bad
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return f"{prefix}{key}={value!r}"
    return None


#: Fields the tables read, when present: their types.
_OPTIONAL: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("config", dict, "an object"),
    ("wall_time", dict, "an object"),
    ("chance", dict, "an object"),
    ("hashed_metrics", dict, "an object"),
    ("reranked_metrics", dict, "an object"),
    ("images_per_second", dict, "an object"),
    ("model_selection", dict, "an object"),
    ("overrides", list, "a list"),
    ("seed", int, "an integer"),
    ("backbone", str, "a string"),
    ("preset", str, "a string"),
    ("finished", str, "a string"),
    ("benchmark_version", int, "an integer"),
)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A readable result in the current schema. Schema 1 lacks ``kind``, the tie rule
    (it ranked ties by gallery index), inputs and initialisation."""
    if data["schema"] == 1:
        conventions = {"ties": "gallery index (stable sort)", **data.get("conventions", {})}
        data = {
            **data,
            "schema": SCHEMA,
            "kind": data.get("kind", "run"),
            "conventions": conventions,
            "upgraded_from": 1,
        }
    return data


def read_result(path: str | Path) -> dict[str, Any]:
    """A result file (or a run folder holding one), upgraded to the current schema."""
    path = Path(path)
    file = path / RESULT if path.is_dir() else path
    if not file.is_file():
        raise ResultFileError(
            f"no result at {path} (a run folder with {RESULT}, or the file itself)"
        )
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultFileError(f"{file} is not readable JSON: {exc}") from None
    problem = check_result(data)
    if problem:
        raise ResultFileError(f"{file} {problem}")
    return upgrade(data)


def load_result(path: str | Path) -> Result:
    """One :class:`Result` from a result file or a run folder."""
    path = Path(path)
    file = path / RESULT if path.is_dir() else path
    return Result.from_dict(read_result(file), file)


@dataclass(frozen=True)
class Skipped:
    """A result file that was left out, and why."""

    path: Path
    reason: str


def find_results(
    root: Path, evaluations: bool = False
) -> tuple[list[tuple[Path, dict[str, Any]]], list[Skipped]]:
    """Every usable result under ``root`` (with ``run_dir`` added), and the files that were
    skipped with the reason; with ``evaluations`` also the ``eval-*.json`` of ``sbirbench
    eval`` beside the runs' checkpoints."""
    found, skipped = [], []
    files = set(Path(root).rglob(RESULT))
    if evaluations:
        files |= {
            f for f in Path(root).rglob("eval-*.json") if not f.name.endswith(".per_query.json")
        }
    for file in sorted(files):
        try:
            found.append((file.parent, {**read_result(file), "run_dir": str(file.parent)}))
        except ResultFileError as exc:
            skipped.append(Skipped(file, str(exc).removeprefix(f"{file} ")))
    return found, skipped


def unfinished_runs(root: Path) -> list[Path]:
    """Run folders under ``root`` that started (``config.json``) but have no result."""
    return sorted(c.parent for c in Path(root).rglob(CONFIG) if not (c.parent / RESULT).exists())


def rerank_label(k: object) -> str:
    """How a result's second ranking is named in tables: "re-ranked, top 100" or
    "re-ranked, all pairs" (``k`` as results record it: an integer or "all")."""
    return "re-ranked, all pairs" if k == "all" else f"re-ranked, top {k}"
