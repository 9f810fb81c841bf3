"""Benchmarks and suites from ``benchmarks.toml`` (read with tomllib).

A malformed file is reported as ``path:line: problem``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbirbench.errors import UserError
from sbirbench.metrics.names import AP_CONVENTIONS, parse_any_metric
from sbirbench.protocol.options import protocol_fields

if TYPE_CHECKING:
    from sbirbench.protocol.cross import CrossOptions
    from sbirbench.protocol.gzs import GZSOptions
from sbirbench.runtime.paths import repo_file

ENV_FILE = "SBIRBENCH_BENCHMARKS"


class BenchmarkFileError(UserError):
    """``benchmarks.toml`` is malformed."""


@dataclass(frozen=True)
class PublishedRow:
    """A published result to compare with."""

    method: str
    venue: str
    metrics: dict[str, float]
    hash_bits: int | None = None
    #: The method's second-stage ranking (a re-ranking relation), not its embedding's.
    reranked: bool = False

    @property
    def label(self) -> str:
        bits = f", {self.hash_bits}-bit" if self.hash_bits else ""
        stage = ", re-ranked" if self.reranked else ""
        return f"{self.method} ({self.venue}{bits}{stage})"


@dataclass(frozen=True)
class Benchmark:
    """A data set, class split, metrics, AP convention and version."""

    name: str
    dataset: str
    split: str
    version: int
    metrics: tuple[str, ...]
    ap: str
    description: str = ""
    published: tuple[PublishedRow, ...] = ()
    test_size: tuple[int, int] | None = None
    #: "zs" (plain zero-shot) or "gzs" (generalised: held-out seen images join the test
    #: set, by the rule of sbirbench.protocol.gzs with the options of the ``gzs`` table).
    protocol: str = "zs"
    gzs: GZSOptions | None = None
    #: FG only: each query's gallery, "class" (its photo's class folder) or "all".
    fg_gallery: str = "class"
    #: Cross-data-set only: the source data set that trains (sbirbench.protocol.cross).
    cross: CrossOptions | None = None


@dataclass(frozen=True)
class Suite:
    """Methods x variants x benchmarks x seeds, run by ``sbirbench bench``.

    ``variants`` name sets of ``--set`` overrides (e.g. ablations); without them each
    method runs once per benchmark and seed with the suite's ``overrides``.
    """

    name: str
    methods: tuple[str, ...]
    benchmarks: tuple[str, ...]
    seeds: tuple[int, ...]
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    description: str = ""
    variants: tuple[tuple[str, tuple[str, ...]], ...] = (("", ()),)
    #: Rows compared query by query in the comparison ("a:b", method names or labels).
    paired: tuple[tuple[str, str], ...] = ()


@dataclass
class BenchmarkFile:
    """The parsed file."""

    path: Path
    benchmarks: dict[str, Benchmark] = field(default_factory=dict)
    suites: dict[str, Suite] = field(default_factory=dict)

    def benchmark(self, name: str) -> Benchmark:
        if name not in self.benchmarks:
            available = ", ".join(self.benchmarks)
            raise UserError(f"unknown benchmark '{name}' in {self.path}; available: {available}")
        return self.benchmarks[name]

    def suite(self, name: str) -> Suite:
        if name not in self.suites:
            available = ", ".join(self.suites) or "none"
            raise UserError(f"unknown suite '{name}' in {self.path}; available: {available}")
        return self.suites[name]

    def find(self, dataset: str, split: str) -> Benchmark | None:
        """The plain zero-shot benchmark for a data set and class split, if one is defined
        (GZS and FG benchmarks are chosen only by name)."""
        for bench in self.benchmarks.values():
            if bench.dataset == dataset and bench.split == split and bench.protocol == "zs":
                return bench
        return None


def benchmarks_path() -> Path:
    """``$SBIRBENCH_BENCHMARKS``, else the ``benchmarks.toml`` shipped with sbirbench."""
    env = os.environ.get(ENV_FILE)
    if env:
        path = Path(env)
        if not path.is_file():
            raise UserError(f"{ENV_FILE}={env}: no such file")
        return path
    found = repo_file("benchmarks.toml")
    if found is None:
        raise UserError(f"benchmarks.toml not found; set {ENV_FILE} to its path")
    return found


def load_benchmarks(path: str | os.PathLike[str] | None = None) -> BenchmarkFile:
    """Parse and validate a benchmarks file."""
    path = Path(path) if path is not None else benchmarks_path()
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise BenchmarkFileError(f"{where}: {problem}") from None
    parser = _Parser(path, text)
    out = BenchmarkFile(path)
    for name, table in _table(data.get("benchmarks", {}), parser, "benchmarks").items():
        out.benchmarks[name] = parser.benchmark(name, table)
    for name, table in _table(data.get("suites", {}), parser, "suites").items():
        suite = parser.suite(name, table)
        for bench in suite.benchmarks:
            if bench not in out.benchmarks:
                parser.fail(f"suites.{name}", f"benchmark '{bench}' is not defined")
        out.suites[name] = suite
    return out


def _table(value: Any, parser: _Parser, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        parser.fail(where, "must be a table")
    return value


class _Parser:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, dotted: str) -> int:
        """Line of the ``[dotted]`` table header (or a key naming its last part)."""
        head = dotted.split(".")
        patterns = [
            re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(re.escape(p) for p in head) + r"\s*\]"),
            re.compile(r"^\s*" + re.escape(head[-1]) + r"\s*="),
        ]
        for pattern in patterns:
            for number, line in enumerate(self.lines, start=1):
                if pattern.search(line):
                    return number
        return 1

    def fail(self, where: str, problem: str) -> None:
        raise BenchmarkFileError(f"{self.path}:{self.line_of(where)}: [{where}] {problem}")

    def get(
        self,
        table: dict[str, Any],
        where: str,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
    ) -> Any:
        if key not in table:
            if default is ...:
                self.fail(where, f"missing key '{key}'")
            return default
        value = table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(where, f"'{key}' must be {names}, got {value!r}")
        return value

    def metrics(self, where: str, values: list[Any]) -> tuple[str, ...]:
        out = []
        for value in values:
            try:
                out.append(parse_any_metric(str(value)))
            except UserError as exc:
                self.fail(where, str(exc))
        return tuple(out)

    def benchmark(self, name: str, table: Any) -> Benchmark:
        where = f"benchmarks.{name}"
        if not isinstance(table, dict):
            self.fail(where, "must be a table")
        known = {
            "dataset",
            "split",
            "version",
            "metrics",
            "ap",
            "description",
            "published",
            "test_size",
            "protocol",
            "gzs",
            "fg",
            "cross",
        }
        for key in table:
            if key not in known:
                self.fail(where, f"unknown key '{key}'; valid keys: {', '.join(sorted(known))}")
        ap = self.get(table, where, "ap", str, "interpolated")
        if ap not in AP_CONVENTIONS:
            self.fail(where, f"'ap' must be one of {', '.join(AP_CONVENTIONS)}, got '{ap}'")
        metrics = self.metrics(where, self.get(table, where, "metrics", list))
        if not metrics:
            self.fail(where, "'metrics' is empty")
        published = []
        for row in self.get(table, where, "published", list, []):
            if not isinstance(row, dict):
                self.fail(where, "each 'published' entry must be an inline table")
            fields = ("method", "venue", "hash_bits", "reranked")
            values = {k: v for k, v in row.items() if k not in fields}
            for key, value in values.items():
                if not isinstance(value, int | float) or isinstance(value, bool):
                    self.fail(where, f"published value {key}={value!r} must be a number")
            published.append(
                PublishedRow(
                    method=self.get(row, where, "method", str),
                    venue=self.get(row, where, "venue", str, ""),
                    metrics=dict(
                        zip(
                            self.metrics(where, list(values)),
                            map(float, values.values()),
                            strict=True,
                        )
                    ),
                    hash_bits=self.get(row, where, "hash_bits", int, None),
                    reranked=self.get(row, where, "reranked", bool, False),
                )
            )
        return Benchmark(
            name=name,
            dataset=self.get(table, where, "dataset", str),
            split=self.get(table, where, "split", str),
            version=self.get(table, where, "version", int),
            metrics=metrics,
            ap=ap,
            description=self.get(table, where, "description", str, ""),
            published=tuple(published),
            test_size=self.test_size(table, where),
            **self.protocol(table, where),
        )

    def protocol(self, table: dict[str, Any], where: str) -> dict[str, Any]:
        """The ``protocol`` key and its options table (:mod:`sbirbench.protocol.options`)."""
        return protocol_fields(self, table, where)

    def test_size(self, table: dict[str, Any], where: str) -> tuple[int, int] | None:
        size = self.get(table, where, "test_size", list, None)
        if size is None:
            return None
        if len(size) != 2 or not all(isinstance(n, int) and n > 0 for n in size):
            self.fail(where, "'test_size' must be [queries, gallery], two positive integers")
        return (size[0], size[1])

    def suite(self, name: str, table: Any) -> Suite:
        where = f"suites.{name}"
        if not isinstance(table, dict):
            self.fail(where, "must be a table")
        known = {
            "methods",
            "benchmarks",
            "seeds",
            "preset",
            "set",
            "description",
            "variants",
            "paired",
        }
        for key in table:
            if key not in known:
                self.fail(where, f"unknown key '{key}'; valid keys: {', '.join(sorted(known))}")
        seeds = self.get(table, where, "seeds", list, [0])
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            self.fail(where, "'seeds' must be a list of integers")
        lists = {}
        for key in ("methods", "benchmarks", "set", "paired"):
            values = self.get(table, where, key, list, [] if key in ("set", "paired") else ...)
            if not all(isinstance(v, str) for v in values):
                self.fail(where, f"'{key}' must be a list of strings")
            lists[key] = tuple(values)
        variants = self.get(table, where, "variants", dict, {"": []})
        for variant, values in variants.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                self.fail(where, f"variant '{variant}' must be a list of KEY=VALUE strings")
        return Suite(
            name=name,
            methods=lists["methods"],
            benchmarks=lists["benchmarks"],
            seeds=tuple(seeds),
            preset=self.get(table, where, "preset", str, None),
            overrides=lists["set"],
            description=self.get(table, where, "description", str, ""),
            variants=tuple((k, tuple(v)) for k, v in variants.items()),
            paired=tuple(self.pair(where, text) for text in lists["paired"]),
        )

    def pair(self, where: str, text: str) -> tuple[str, str]:
        a, sep, b = text.partition(":")
        if not sep or not a.strip() or not b.strip():
            self.fail(where, f"'paired' entries are 'a:b' (two rows), got '{text}'")
        return a.strip(), b.strip()
