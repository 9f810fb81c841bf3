"""Step 2 of a run: resolve the options into a frozen :class:`RunSpec`.

Precedence, lowest first: each plugin's Config defaults, the method's preset, the flags
(``--epochs``, ``--batch-size``, ``--backbone``), then ``--set KEY=VALUE``. Every config
is built and checked here, so an unknown key or a bad value stops the run before any
data is read or any folder made.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, replace
from typing import Any

from sbirbench.config import build_config, split_overrides
from sbirbench.errors import UserError
from sbirbench.interfaces import BackboneSpec, Method, MethodSetup, SBIRDataset
from sbirbench.metrics.names import is_accuracy, parse_any_metric
from sbirbench.plugins.manager import get_plugins
from sbirbench.protocol.benchmarks import Benchmark, PublishedRow, load_benchmarks
from sbirbench.protocol.cross import CrossOptions
from sbirbench.protocol.gzs import GZSOptions
from sbirbench.protocol.validation import apply_validation

from .options import RunOptions
from .presets import META, choose_preset, load_presets

STANDARD_METRICS = ("map@all", "map@200", "prec@100", "prec@200")
#: The backbone options that load pretrained weights, at the values that load none.
NO_WEIGHTS: dict[str, Any] = {"pretrained": False, "weights": None}


@dataclass(frozen=True)
class Protocol:
    """How a run is evaluated and under which name it is recorded."""

    benchmark: str
    version: int | None
    metrics: tuple[str, ...]
    ap: str = "interpolated"
    ties: str = "shared"
    hash_bits: int | None = None
    published: tuple[PublishedRow, ...] = ()
    test_size: tuple[int, int] | None = None
    kind: str = "zs"
    gzs: GZSOptions | None = None
    fg_gallery: str = "class"
    cross: CrossOptions | None = None

    def renamed(self, name: str) -> Protocol:
        """The same measurement recorded under another name (no version, no published
        rows, no expected size): for a test set that is not the benchmark's. A GZS
        measurement keeps ``-gzs`` in the name, apart from plain zero-shot ones."""
        if self.cross is not None:
            name = f"{self.cross.source}-to-{name}"
        elif self.kind != "zs":
            name = f"{name}-{self.kind}"
        return replace(self, benchmark=name, version=None, published=(), test_size=None)


@dataclass(frozen=True)
class RunSpec:
    """A fully resolved run: plugins, their configs, the protocol, device and precision."""

    options: RunOptions
    method_name: str
    method_cls: type[Method]
    method_config: Any
    preset: str | None
    backbone_name: str
    backbone_factory: Any
    backbone_config: Any
    dataset_name: str
    dataset_cls: type[SBIRDataset]
    dataset_config: Any
    protocol: Protocol
    device: str
    precision: str

    def backbone_spec(self, *, pretrained: bool = True) -> BackboneSpec:
        """The backbone; ``pretrained=False`` skips pretrained weights (a checkpoint will
        overwrite them anyway). A factory that takes ``load_weights`` builds the network
        with its weights' data config (normalisation, resize) but without reading them;
        for other factories the ``pretrained``/``weights`` options are switched off."""
        config, factory = self.backbone_config, self.backbone_factory
        if not pretrained:
            if "load_weights" in inspect.signature(factory).parameters:
                factory = functools.partial(factory, load_weights=False)
            else:
                changes = {k: v for k, v in NO_WEIGHTS.items() if hasattr(config, k)}
                config = replace(config, **changes)
        return BackboneSpec(self.backbone_name, factory, config)

    def build_dataset(self) -> SBIRDataset:
        return apply_validation(self.dataset_cls(self.dataset_config))

    def build_method(
        self, num_classes: int, *, pretrained: bool = True, class_names: tuple[str, ...] = ()
    ) -> Method:
        setup = MethodSetup(
            num_classes,
            self.backbone_spec(pretrained=pretrained),
            self.options.seed,
            training=pretrained,
            class_names=class_names,
        )
        return self.method_cls(self.method_config, setup)


def dataset_and_split(name: str, split: str | None) -> tuple[str, type[SBIRDataset], str]:
    """The registered name and class of a data set, and the split (its default if None)."""
    plugins = get_plugins()
    dataset_cls = plugins.datasets.load(name)
    name = plugins.datasets.get(name).name
    split = split or dataset_cls.splits[0]
    if split not in dataset_cls.splits:
        raise UserError(
            f"data set {name} has the splits {', '.join(dataset_cls.splits)}; not '{split}'"
        )
    return name, dataset_cls, split


def _split_backbone(value: str) -> tuple[str, dict[str, str]]:
    """``NAME:MODEL`` sets the backbone's ``model`` option (``timm:resnet50``)."""
    name, sep, model = value.partition(":")
    return name, ({"model": model} if sep else {})


def _benchmark_and_data(options: RunOptions) -> tuple[Benchmark | None, str, str | None]:
    if options.benchmark:
        bench = load_benchmarks().benchmark(options.benchmark)
        if options.dataset and options.dataset != bench.dataset:
            raise UserError(
                f"benchmark {bench.name} uses data set '{bench.dataset}', not '{options.dataset}'"
            )
        if options.split and options.split != bench.split:
            raise UserError(
                f"benchmark {bench.name} uses split '{bench.split}', not '{options.split}'"
            )
        return bench, bench.dataset, bench.split
    if options.dataset:
        return None, options.dataset, options.split
    raise UserError("name a data set (--dataset NAME) or a benchmark (--benchmark NAME)")


def resolve_batchnorm(
    name: str, method_cls: type[Method], config: Any, backbone_config: Any
) -> Any:
    """The method config with ``batchnorm = "auto"`` made concrete (``frozen`` for a
    backbone with pretrained weights, ``train`` for one trained from scratch), after
    refusing ``joint`` for a method that runs each modality in its own pass: its running
    statistics would alternate between photo and sketch batches, and the network would
    be tested under statistics it never trained under."""
    value = getattr(config, "batchnorm", None)
    if value == "joint" and not method_cls.joint_pass:
        raise UserError(
            f"method {name}: batchnorm=joint needs one forward pass of sketches and photos "
            f"together, and {name} runs each modality in its own pass; use batchnorm=frozen"
        )
    if value != "auto":
        return config
    pretrained = any(getattr(backbone_config, k, off) != off for k, off in NO_WEIGHTS.items())
    return replace(config, batchnorm="frozen" if pretrained else "train")


def protocol_for(
    bench: Benchmark | None, name: str, dataset_cls: type[SBIRDataset], options: RunOptions
) -> Protocol:
    kind = bench.protocol if bench else "zs"
    metrics = options.metrics or (
        (
            bench.metrics
            if kind == "fg"
            else tuple(dict.fromkeys((*bench.metrics, *STANDARD_METRICS)))
        )
        if bench
        else dataset_cls.default_metrics
    )
    parsed = tuple(parse_any_metric(m) for m in metrics)
    if any(is_accuracy(m) for m in parsed) != (kind == "fg"):
        raise UserError(
            "acc@K metrics belong to the fine-grained protocol (a benchmark with protocol "
            '= "fg", such as sketchy-21-fg), and it reports only acc@K'
        )
    return Protocol(
        benchmark=name,
        version=bench.version if bench else None,
        metrics=parsed,
        ap=options.ap or (bench.ap if bench else "interpolated"),
        ties=options.ties,
        hash_bits=options.hash_bits,
        published=bench.published if bench else (),
        test_size=bench.test_size if bench else None,
        kind=kind,
        gzs=bench.gzs if bench else None,
        fg_gallery=bench.fg_gallery if bench else "class",
        cross=bench.cross if bench else None,
    )


def resolve(options: RunOptions) -> RunSpec:
    """Resolve ``options`` against the plugins, benchmarks.toml and the method's presets."""
    plugins = get_plugins()
    bench, dataset_name, split = _benchmark_and_data(options)
    dataset_name, dataset_cls, split = dataset_and_split(dataset_name, split)
    if bench is None:
        bench = load_benchmarks().find(dataset_name, split)
    benchmark = bench.name if bench else f"{dataset_name}-{split}"

    entry = plugins.methods.get(options.method)
    method_cls = entry.load()
    presets = load_presets(method_cls, entry.name, entry.origin)
    preset = choose_preset(presets, options.preset, benchmark, entry.name)
    table = presets.get(preset, {}) if preset else {}
    overrides = split_overrides(options.overrides)

    method_values = {k: v for k, v in table.items() if k not in META}
    for key in ("epochs", "batch_size", "backbone"):
        if getattr(options, key) is not None:
            method_values[key] = getattr(options, key)
    method_values.update(overrides[""])
    method_config = build_config(method_cls.Config, method_values, what=f"method {entry.name}")

    backbone_name, backbone_values = _split_backbone(str(method_config.backbone))
    backbone_entry = plugins.backbones.get(backbone_name)
    backbone_factory = backbone_entry.load()
    # A preset's backbone options belong to the preset's backbone, not to another one.
    preset_backbone = _split_backbone(str(table.get("backbone", "")))[0]
    preset_options = (
        table.get("backbone_config", {})
        if preset_backbone and plugins.backbones.get(preset_backbone).name == backbone_entry.name
        else {}
    )
    backbone_values = {**preset_options, **backbone_values, **overrides["backbone"]}
    backbone_config = build_config(
        backbone_factory.Config, backbone_values, what=f"backbone {backbone_entry.name}"
    )
    method_config = resolve_batchnorm(entry.name, method_cls, method_config, backbone_config)

    dataset_values = {**table.get("dataset_config", {}), "split": split, **overrides["dataset"]}
    if options.data_root is not None:
        dataset_values["data_root"] = options.data_root
    dataset_config = build_config(
        dataset_cls.Config, dataset_values, what=f"data set {dataset_name}"
    )
    protocol = protocol_for(bench, benchmark, dataset_cls, options)
    if dataset_config.validation_classes:  # never recorded under the benchmark's name
        protocol = protocol.renamed(
            f"{dataset_name}-{split}-val{dataset_config.validation_classes}"
        )
    device, precision = device_and_precision(options.device, options.precision)
    return RunSpec(
        options,
        entry.name,
        method_cls,
        method_config,
        preset,
        backbone_entry.name,
        backbone_factory,
        backbone_config,
        dataset_name,
        dataset_cls,
        dataset_config,
        protocol,
        device,
        precision,
    )


def device_and_precision(device: str | None, precision: str | None) -> tuple[str, str]:
    """The device (cuda when available) and precision (bf16 on cuda, else fp32)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, precision or ("bf16" if device == "cuda" else "fp32")


def build_dataset(
    name: str, split: str | None, data_root: str | None, overrides: tuple[str, ...] | list[str] = ()
) -> SBIRDataset:
    """A data set from its plugin name, split, root and ``dataset.KEY=VALUE`` overrides
    (for ``sbirbench data`` and tools that need the data without a run)."""
    name, dataset_cls, split = dataset_and_split(name, split)
    values = {"split": split, **split_overrides(overrides)["dataset"]}
    if data_root is not None:
        values["data_root"] = data_root
    return apply_validation(
        dataset_cls(build_config(dataset_cls.Config, values, what=f"data set {name}"))
    )
