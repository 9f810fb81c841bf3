"""Step 3 of a run: bind the spec to the data set it will read.

Binding builds the data set, fingerprints what it holds (the fingerprint joins the run's
identity, so changed data never resumes or reuses an old run), and renames the benchmark
when the test set is not the benchmark's (a subset is recorded as ``<dataset>-<split>``).
Under the GZS protocol the data set is seen through :class:`sbirbench.protocol.gzs.GZSView`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sbirbench.config import as_dict, config_hash
from sbirbench.errors import UserError
from sbirbench.interfaces import SBIRDataset
from sbirbench.protocol.cross import CrossView
from sbirbench.protocol.gzs import GZSOptions, GZSView

from .resolve import Protocol, RunSpec, build_dataset


@dataclass(frozen=True)
class BoundRun:
    """A spec, its data set, the data's fingerprint and the protocol it is recorded under."""

    spec: RunSpec
    dataset: SBIRDataset
    fingerprint: str
    protocol: Protocol
    warning: str | None = None

    def identity(self) -> dict[str, Any]:
        """Everything that decides the trained model (not where data or results live)."""
        spec = self.spec
        dataset = {k: v for k, v in as_dict(spec.dataset_config).items() if k != "data_root"}
        return {
            "method": spec.method_name,
            "method_config": as_dict(spec.method_config),
            "backbone": spec.backbone_name,
            "backbone_config": as_dict(spec.backbone_config),
            "dataset": spec.dataset_name,
            "dataset_config": dataset,
            "benchmark": self.protocol.benchmark,
            "benchmark_version": self.protocol.version,
            "seed": spec.options.seed,
            "world_size": spec.options.world_size,
            "precision": spec.precision,
            "data": self.fingerprint,
            # only when not the default, so the hashes of earlier runs stay valid
            **({"select": spec.options.select} if spec.options.select != "last" else {}),
        }

    @property
    def config_hash(self) -> str:
        return config_hash(self.identity())

    def resolved(self) -> dict[str, Any]:
        """The resolved configuration as stored with results and checkpoints."""
        spec, protocol = self.spec, self.protocol
        return {
            **self.identity(),
            "preset": spec.preset,
            "overrides": list(spec.options.overrides),
            "metrics": list(protocol.metrics),
            "ap": protocol.ap,
            "ties": protocol.ties,
            "hash_bits": protocol.hash_bits,
            "device": spec.device,
            "data_root": spec.dataset_config.data_root,
            "protocol": protocol.kind,
            # the benchmarks.toml entry asked for (``benchmark`` may be a subset's name):
            # ``sbirbench eval`` evaluates under it by default
            "benchmark_entry": spec.options.benchmark,
            "source_root": spec.options.source_root,
        }

    def stage_identity(self) -> dict[str, Any]:
        """What besides a stage's own reuse key decides a stage's output (no method)."""
        return {
            k: v
            for k, v in self.identity().items()
            if k not in ("method", "method_config", "benchmark", "benchmark_version")
        }


def bind(spec: RunSpec, dataset: SBIRDataset | None = None) -> BoundRun:
    """Build (or take) the data set and tie the spec to it."""
    dataset = dataset if dataset is not None else spec.build_dataset()
    if spec.protocol.cross is not None and not isinstance(dataset, CrossView):
        cross = spec.protocol.cross
        source = build_dataset(cross.source, cross.source_split, spec.options.source_root)
        dataset = CrossView(source, dataset, cross)  # drop_test changes the test set
    protocol, warning = _check_test_size(spec, dataset)  # GZS: the unseen part
    if protocol.kind == "gzs" and not isinstance(dataset, GZSView):
        dataset = GZSView(dataset, protocol.gzs or GZSOptions())
    if protocol.kind == "fg":
        _check_pairs(dataset)
        if protocol.hash_bits:
            raise UserError("--hash-bits is not offered under the fine-grained protocol")
    return BoundRun(spec, dataset, data_fingerprint(dataset), protocol, warning)


def _check_test_size(spec: RunSpec, dataset: SBIRDataset) -> tuple[Protocol, str | None]:
    """The protocol, renamed to ``<dataset>-<split>`` when the data's test set is not the
    benchmark's (a subset, say), with the warning that says so."""
    protocol = spec.protocol
    if protocol.test_size is None:
        return protocol, None
    found = (len(dataset.items("test", "sketch")), len(dataset.items("test", "photo")))
    if all(abs(n - want) <= 0.01 * want for n, want in zip(found, protocol.test_size, strict=True)):
        return protocol, None
    renamed = protocol.renamed(f"{spec.dataset_name}-{spec.dataset_config.split}")
    size = protocol.test_size
    return renamed, (
        f"the test set found ({found[0]} sketches x {found[1]} photos) is not "
        f"{protocol.benchmark}'s ({size[0]} x {size[1]}); results are recorded "
        f"as '{renamed.benchmark}', apart from {protocol.benchmark}"
    )


def _check_pairs(dataset: SBIRDataset) -> None:
    """The fine-grained protocol pairs sketches with photos by file name: stop before
    training when the data set's items are not files."""
    items = [*dataset.items("test", "sketch")[:1], *dataset.items("test", "photo")[:1]]
    if not all(isinstance(ref, str) for ref, _ in items):
        raise UserError(
            "the fine-grained protocol needs image files whose names keep the sketch-photo "
            f"pairs (Sketchy's layout); the {spec_name(dataset)} data set has none"
        )


def spec_name(dataset: SBIRDataset) -> str:
    return str(dataset.describe().get("name", type(dataset).__name__))


def data_fingerprint(dataset: SBIRDataset) -> str:
    """A digest of every (item, label) of both subsets and modalities, with paths taken
    relative to the data set's root (so moving the data keeps it, changing it does not)."""
    info = dataset.describe()
    # the data set's root, and a cross-data-set source's own root
    roots = [
        str(r) for r in (info.get("cross", {}).get("source", {}).get("root"), info.get("root")) if r
    ]
    digest = hashlib.sha256()
    for subset in ("train", "test"):
        for modality in ("sketch", "photo"):
            items = dataset.items(subset, modality)
            digest.update(f"{subset}/{modality}:{len(items)}\n".encode())
            for ref, label in items:
                path = str(ref)
                root = next((r for r in roots if path.startswith(r)), "")
                digest.update(f"{path.removeprefix(root)}\t{label}\n".encode())
    return digest.hexdigest()
