"""The rows and boards of a leaderboard, as data: what :mod:`sbirbench.results.leaderboard`
builds from results and :mod:`sbirbench.results.tables` renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports the renderer; numpy stays out of its start-up
    from sbirbench.results.stats import Interval

#: The mark of a published row's label (benchmarks.toml), explained under each table.
PUBLISHED_MARK = "†"


@dataclass
class Row:
    """One table row: measured runs of a configuration, a published result, or chance."""

    label: str
    runs: int
    values: dict[str, Interval]
    std: dict[str, float | None] = field(default_factory=dict)
    published: bool = False
    chance: bool = False
    method: str = ""
    run_ids: list[str] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)
    seconds: float | None = None  # mean wall time per run
    #: A two-stage method's second ranking: its candidates per query (an integer or "all").
    rerank_k: object = None

    @property
    def measured(self) -> bool:
        return not (self.published or self.chance)

    @property
    def reranked(self) -> bool:
        return self.rerank_k is not None


@dataclass
class Board:
    benchmark: str
    version: int | None
    metrics: list[str]
    rows: list[Row]
    duplicates: list[Duplicate] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.benchmark}" + (f" (v{self.version})" if self.version is not None else "")

    def best(self) -> dict[str, float]:
        """Best measured mean per metric (higher is better for every metric)."""
        out = {}
        for metric in self.metrics:
            values = [r.values[metric].mean for r in self.rows if metric in r.values and r.measured]
            if values:
                out[metric] = max(values)
        return out


@dataclass(frozen=True)
class Duplicate:
    """A run of the same configuration and seed as a kept one: shown, never averaged."""

    kept: str
    dropped: str
    seed: int
