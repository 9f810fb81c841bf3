"""The protocol of a benchmark in ``benchmarks.toml``: the ``protocol`` key and its
options table (``gzs``, ``fg`` or ``cross``; docs/protocols.md)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Protocol

from sbirbench.metrics.names import is_accuracy
from sbirbench.protocol.cross import CrossOptions
from sbirbench.protocol.gzs import GZSOptions


class Parser(Protocol):
    """The benchmark file's parser (:mod:`sbirbench.protocol.benchmarks`): typed lookups
    and located failures."""

    def get(
        self, table: dict[str, Any], where: str, key: str, kind: Any, default: Any = ...
    ) -> Any: ...

    def fail(self, where: str, problem: str) -> None: ...


PROTOCOLS = ("zs", "gzs", "fg", "cross")


def protocol_fields(parser: Parser, table: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``protocol`` key and its options table (``gzs``, ``fg`` or ``cross``)."""
    protocol = parser.get(table, where, "protocol", str, "zs")
    if protocol not in PROTOCOLS:
        parser.fail(where, f"'protocol' must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    metrics = parser.get(table, where, "metrics", list)
    if any(is_accuracy(str(m).lower()) for m in metrics) != (protocol == "fg"):
        parser.fail(where, "acc@K metrics are the fine-grained protocol's, and only its")
    for name in ("gzs", "fg", "cross"):
        if name in table and protocol != name:
            parser.fail(where, f"a '{name}' table needs protocol = \"{name}\"")
    options = parser.get(table, where, protocol, dict, {}) if protocol != "zs" else {}
    parse = {"gzs": gzs_options, "fg": fg_options, "cross": cross_options}
    return {
        "protocol": protocol,
        **(parse[protocol](parser, options, where) if protocol in parse else {}),
    }


def gzs_options(parser: Parser, options: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(options) - {f.name for f in fields(GZSOptions)}
    if unknown:
        parser.fail(
            where,
            f"unknown gzs option(s) {', '.join(sorted(unknown))}; valid: seed, count, holdout",
        )
    gzs = GZSOptions(
        seed=parser.get(options, where, "seed", int, 0),
        count=parser.get(options, where, "count", str, "sem-pcyc"),
        holdout=parser.get(options, where, "holdout", bool, True),
    )
    if gzs.count not in ("sem-pcyc", "fraction"):
        parser.fail(where, f"gzs count must be sem-pcyc or fraction, got '{gzs.count}'")
    return {"gzs": gzs}


def fg_options(parser: Parser, options: dict[str, Any], where: str) -> dict[str, Any]:
    gallery = parser.get(options, where, "gallery", str, "class")
    if set(options) - {"gallery"} or gallery not in ("class", "all"):
        parser.fail(where, 'the \'fg\' table takes gallery = "class" or "all"')
    return {"fg_gallery": gallery}


def cross_options(parser: Parser, options: dict[str, Any], where: str) -> dict[str, Any]:
    overlap = parser.get(options, where, "overlap", str, "drop_train")
    if set(options) - {"source", "source_split", "overlap"} or overlap not in (
        "drop_train",
        "drop_test",
    ):
        parser.fail(
            where,
            "the 'cross' table takes source, source_split and overlap (drop_train or drop_test)",
        )
    return {
        "cross": CrossOptions(
            source=parser.get(options, where, "source", str),
            source_split=parser.get(options, where, "source_split", str, None),
            overlap=overlap,
        )
    }
