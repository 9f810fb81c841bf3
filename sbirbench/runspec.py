"""What a run is: method, backbone and data-set configs resolved from a benchmark, a
preset, command-line flags and ``--set`` overrides, with a hash that names the result.

Precedence, lowest first: the Config dataclass defaults, the method's preset (a table of
the TOML file beside the method's module), flags (``--epochs``, ``--batch-size``,
``--backbone``), then ``--set KEY=VALUE``.
"""

from __future__ import annotations

import hashlib
import inspect
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sbirbench.benchmarks import Benchmark, load_benchmarks, parse_metric
from sbirbench.config import as_dict, build_config, config_hash, split_overrides
from sbirbench.errors import UserError
from sbirbench.interfaces import BackboneSpec, Method, MethodSetup, SBIRDataset
from sbirbench.plugins import get_plugins
from sbirbench.validation import apply_validation

STANDARD_METRICS = ("map@all", "map@200", "prec@100", "prec@200")
PRECISIONS = ("fp32", "bf16", "fp16")
_PRESET_META = ("benchmarks", "description", "backbone_config", "dataset_config")


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for (command-line flags or a suite entry)."""

    method: str
    dataset: str | None = None
    benchmark: str | None = None
    split: str | None = None
    data_root: str | None = None
    backbone: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    device: str | None = None
    precision: str | None = None
    world_size: int = 1
    metrics: tuple[str, ...] | None = None
    ap: str | None = None
    hash_bits: int | None = None
    ties: str = "shared"
    select: str = "last"


@dataclass
class RunSpec:
    """A fully resolved run."""

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
    benchmark: str
    benchmark_version: int | None
    metrics: tuple[str, ...]
    ap: str
    device: str
    precision: str
    published: tuple = field(default_factory=tuple)
    test_size: tuple[int, int] | None = None
    data_fingerprint: str | None = None

    def bind_data(self, dataset: SBIRDataset) -> str | None:
        """Tie the run to what the data set holds (its fingerprint joins the identity) and
        rename the benchmark when the test set is not the benchmark's; returns the warning
        of :meth:`check_test_size`, if any."""
        self.data_fingerprint = data_fingerprint(dataset)
        return self.check_test_size(dataset)

    def check_test_size(self, dataset: SBIRDataset) -> str | None:
        """Rename the benchmark to ``<dataset>-<split>`` when the data's test set is not
        the benchmark's (a subset, say); returns the warning, or None."""
        if self.test_size is None:
            return None
        found = (len(dataset.items("test", "sketch")), len(dataset.items("test", "photo")))
        if all(abs(n - want) <= 0.01 * want for n, want in zip(found, self.test_size,
                                                                strict=True)):
            return None
        old, size = self.benchmark, self.test_size
        self.benchmark = f"{self.dataset_name}-{self.dataset_config.split}"
        self.benchmark_version, self.published, self.test_size = None, (), None
        return (f"the test set found ({found[0]} sketches x {found[1]} photos) is not "
                f"{old}'s ({size[0]} x {size[1]}); results are recorded as "
                f"'{self.benchmark}', apart from {old}")

    def identity(self) -> dict[str, Any]:
        """Everything that decides the trained model (not where data or results live)."""
        dataset = {k: v for k, v in as_dict(self.dataset_config).items() if k != "data_root"}
        return {
            "method": self.method_name, "method_config": as_dict(self.method_config),
            "backbone": self.backbone_name, "backbone_config": as_dict(self.backbone_config),
            "dataset": self.dataset_name, "dataset_config": dataset,
            "benchmark": self.benchmark, "benchmark_version": self.benchmark_version,
            "seed": self.options.seed, "world_size": self.options.world_size,
            "precision": self.precision, "data": self.data_fingerprint,
            # only when not the default, so the hashes of earlier runs stay valid
            **({"select": self.options.select} if self.options.select != "last" else {}),
        }

    @property
    def config_hash(self) -> str:
        return config_hash(self.identity())

    def resolved(self) -> dict[str, Any]:
        """The resolved configuration as stored with results and checkpoints."""
        return {**self.identity(), "preset": self.preset, "overrides": list(self.options.overrides),
                "metrics": list(self.metrics), "ap": self.ap, "ties": self.options.ties,
                "hash_bits": self.options.hash_bits,
                "device": self.device, "data_root": self.dataset_config.data_root}

    def build_dataset(self) -> SBIRDataset:
        return apply_validation(self.dataset_cls(self.dataset_config))

    def backbone_spec(self, *, pretrained: bool = True) -> BackboneSpec:
        """The backbone; ``pretrained=False`` skips pretrained weights (a checkpoint will
        overwrite them anyway)."""
        config = self.backbone_config
        if not pretrained:
            changes = {k: v for k, v in (("pretrained", False), ("weights", None))
                       if hasattr(config, k)}
            config = replace(config, **changes)
        return BackboneSpec(self.backbone_name, self.backbone_factory, config)

    def build_method(self, num_classes: int, *, pretrained: bool = True) -> Method:
        setup = MethodSetup(num_classes, self.backbone_spec(pretrained=pretrained),
                            self.options.seed, training=pretrained)
        return self.method_cls(self.method_config, setup)


def data_fingerprint(dataset: SBIRDataset) -> str:
    """A digest of every (item, label) of both subsets and modalities, with paths taken
    relative to the data set's root (so moving the data keeps it, changing it does not)."""
    root = str(dataset.describe().get("root") or "")
    digest = hashlib.sha256()
    for subset in ("train", "test"):
        for modality in ("sketch", "photo"):
            items = dataset.items(subset, modality)
            digest.update(f"{subset}/{modality}:{len(items)}\n".encode())
            for ref, label in items:
                text = str(ref)
                digest.update(f"{text.removeprefix(root)}\t{label}\n".encode())
    return digest.hexdigest()


def load_presets(method_cls: type) -> dict[str, dict[str, Any]]:
    """The presets in the TOML file beside the method's module (none if there is none)."""
    path = Path(inspect.getfile(method_cls)).with_suffix(".toml")
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: {exc}") from None
    return {name: table for name, table in data.items() if isinstance(table, dict)}


def choose_preset(presets: dict[str, dict[str, Any]], asked: str | None, benchmark: str,
                  method: str) -> str | None:
    """The asked-for preset, else the one listing this benchmark, else none."""
    if asked is not None:
        if asked not in presets:
            available = ", ".join(presets) or "none"
            raise UserError(f"method {method} has no preset '{asked}'; available: {available}")
        return asked
    for name, table in presets.items():
        if benchmark in table.get("benchmarks", ()):
            return name
    return None


def dataset_and_split(name: str, split: str | None) -> tuple[str, type[SBIRDataset], str]:
    """The registered name and class of a data set, and the split (its default if None)."""
    plugins = get_plugins()
    dataset_cls = plugins.datasets.load(name)
    name = plugins.datasets.get(name).name
    split = split or dataset_cls.splits[0]
    if split not in dataset_cls.splits:
        raise UserError(f"data set {name} has the splits {', '.join(dataset_cls.splits)}; "
                        f"not '{split}'")
    return name, dataset_cls, split


def _split_backbone(value: str) -> tuple[str, dict[str, str]]:
    """``NAME:MODEL`` sets the backbone's ``model`` option (``timm:resnet50``)."""
    name, sep, model = value.partition(":")
    return name, ({"model": model} if sep else {})


def resolve(options: RunOptions) -> RunSpec:
    """Resolve ``options`` against the plugins, benchmarks.toml and the method's presets."""
    plugins = get_plugins()
    bench: Benchmark | None = None
    if options.benchmark:
        bench = load_benchmarks().benchmark(options.benchmark)
        if options.dataset and options.dataset != bench.dataset:
            raise UserError(f"benchmark {bench.name} uses data set '{bench.dataset}', "
                            f"not '{options.dataset}'")
        if options.split and options.split != bench.split:
            raise UserError(f"benchmark {bench.name} uses split '{bench.split}', "
                            f"not '{options.split}'")
        dataset_name, split = bench.dataset, bench.split
    elif options.dataset:
        dataset_name, split = options.dataset, options.split
    else:
        raise UserError("name a data set (--dataset NAME) or a benchmark (--benchmark NAME)")

    dataset_name, dataset_cls, split = dataset_and_split(dataset_name, split)
    if bench is None:
        bench = load_benchmarks().find(dataset_name, split)
    benchmark = bench.name if bench else f"{dataset_name}-{split}"

    method_cls = plugins.methods.load(options.method)
    method_name = plugins.methods.get(options.method).name
    presets = load_presets(method_cls)
    preset = choose_preset(presets, options.preset, benchmark, method_name)
    table = presets.get(preset, {}) if preset else {}
    overrides = split_overrides(options.overrides)

    method_values = {k: v for k, v in table.items() if k not in _PRESET_META}
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("backbone", "backbone")):
        if getattr(options, flag) is not None:
            method_values[key] = getattr(options, flag)
    method_values.update(overrides[""])
    method_config = build_config(method_cls.Config, method_values, what=f"method {method_name}")

    backbone_name, backbone_values = _split_backbone(str(method_config.backbone))
    backbone_factory = plugins.backbones.load(backbone_name)
    backbone_name = plugins.backbones.get(backbone_name).name
    # A preset's backbone options belong to the preset's backbone, not to another one.
    preset_backbone = _split_backbone(str(table.get("backbone", "")))[0]
    preset_options = (table.get("backbone_config", {})
                      if preset_backbone and plugins.backbones.get(preset_backbone).name
                      == backbone_name else {})
    backbone_values = {**preset_options, **backbone_values, **overrides["backbone"]}
    backbone_config = build_config(backbone_factory.Config, backbone_values,
                                   what=f"backbone {backbone_name}")

    dataset_values = {**table.get("dataset_config", {}), "split": split, **overrides["dataset"]}
    if options.data_root is not None:
        dataset_values["data_root"] = options.data_root
    dataset_config = build_config(dataset_cls.Config, dataset_values,
                                  what=f"data set {dataset_name}")
    if dataset_config.validation_classes:  # never recorded under the benchmark's name
        bench, benchmark = None, f"{dataset_name}-{split}-val{dataset_config.validation_classes}"

    metrics = options.metrics or (tuple(dict.fromkeys((*bench.metrics, *STANDARD_METRICS)))
                                  if bench else dataset_cls.default_metrics)
    metrics = tuple(parse_metric(m) for m in metrics)
    device, precision = _device_and_precision(options)
    return RunSpec(
        options=options, method_name=method_name, method_cls=method_cls,
        method_config=method_config, preset=preset, backbone_name=backbone_name,
        backbone_factory=backbone_factory, backbone_config=backbone_config,
        dataset_name=dataset_name, dataset_cls=dataset_cls, dataset_config=dataset_config,
        benchmark=benchmark, benchmark_version=bench.version if bench else None,
        metrics=metrics, ap=options.ap or (bench.ap if bench else "interpolated"),
        device=device, precision=precision, published=bench.published if bench else (),
        test_size=bench.test_size if bench else None,
    )


def _device_and_precision(options: RunOptions) -> tuple[str, str]:
    import torch

    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device must be cpu or cuda, not '{device}'")
    precision = options.precision or ("bf16" if device == "cuda" else "fp32")
    if precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not '{precision}'")
    return device, precision


def from_checkpoint(config: dict[str, Any], options: RunOptions) -> RunSpec:
    """The spec of a saved model (method, backbone and their configs from ``config``),
    evaluated on the data set, split and metrics of ``options`` (defaults: the saved ones).
    """
    plugins = get_plugins()
    method_cls = plugins.methods.load(config["method"])
    backbone_factory = plugins.backbones.load(config["backbone"])
    same_dataset = options.dataset in (None, config["dataset"])
    dataset_name = options.dataset or config["dataset"]
    dataset_cls = plugins.datasets.load(dataset_name)
    split = options.split or (config["dataset_config"].get("split") if same_dataset else None)
    split = split or dataset_cls.splits[0]
    dataset_values = {**(config["dataset_config"] if same_dataset else {}), "split": split,
                      **split_overrides(options.overrides)["dataset"]}
    dataset_values["data_root"] = options.data_root or (config.get("data_root")
                                                        if same_dataset else None)
    bench = load_benchmarks().find(dataset_name, split)
    metrics = options.metrics or (tuple(dict.fromkeys((*bench.metrics, *STANDARD_METRICS)))
                                  if bench else dataset_cls.default_metrics)
    device, precision = _device_and_precision(replace(options, precision=options.precision
                                                      or config.get("precision")))
    return RunSpec(
        options=replace(options, seed=config.get("seed", 0)), method_name=config["method"],
        method_cls=method_cls,
        method_config=build_config(method_cls.Config, config["method_config"],
                                   what=f"method {config['method']}"),
        preset=config.get("preset"), backbone_name=config["backbone"],
        backbone_factory=backbone_factory,
        backbone_config=build_config(backbone_factory.Config, config["backbone_config"],
                                     what=f"backbone {config['backbone']}"),
        dataset_name=dataset_name, dataset_cls=dataset_cls,
        dataset_config=build_config(dataset_cls.Config, dataset_values,
                                    what=f"data set {dataset_name}"),
        benchmark=bench.name if bench else f"{dataset_name}-{split}",
        benchmark_version=bench.version if bench else None,
        metrics=tuple(parse_metric(m) for m in metrics),
        ap=options.ap or (bench.ap if bench else "interpolated"), device=device,
        precision=precision, published=bench.published if bench else (),
        test_size=bench.test_size if bench else None)


def build_dataset(name: str, split: str | None, data_root: str | None,
                  overrides: tuple[str, ...] | list[str] = ()) -> SBIRDataset:
    """A data set from its plugin name, split, root and ``dataset.KEY=VALUE`` overrides."""
    name, dataset_cls, split = dataset_and_split(name, split)
    values = {"split": split, **split_overrides(overrides)["dataset"]}
    if data_root is not None:
        values["data_root"] = data_root
    return apply_validation(dataset_cls(build_config(dataset_cls.Config, values,
                                                     what=f"data set {name}")))
