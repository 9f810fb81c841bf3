"""The spec of a saved model: method, backbone and their configs from the checkpoint's
configuration, evaluated on the data and protocol a user names (default: the ones it was
trained under). Used by ``sbirbench eval``, the reports and ``sbirbench search``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sbirbench.config import build_config, split_overrides
from sbirbench.errors import UserError
from sbirbench.interfaces import Method
from sbirbench.plugins.manager import get_plugins
from sbirbench.protocol.benchmarks import load_benchmarks

from .options import RunOptions
from .resolve import RunSpec, device_and_precision, protocol_for


def resolve_saved(config: dict[str, Any], options: RunOptions) -> RunSpec:
    """The spec of a saved model (method, backbone and their configs from its ``config``),
    evaluated on the data set, split and metrics of ``options`` (default: the saved ones)."""
    plugins = get_plugins()
    method_cls = plugins.methods.load(config["method"])
    backbone_factory = plugins.backbones.load(config["backbone"])
    benchmarks = load_benchmarks()
    entry = options.benchmark
    if entry is None and options.dataset is None and options.split is None:
        entry = config.get("benchmark_entry")  # the benchmark it was trained under
    named = benchmarks.benchmark(entry) if entry else None
    if named is not None:
        if options.dataset not in (None, named.dataset):
            raise UserError(
                f"benchmark {named.name} uses data set '{named.dataset}', not '{options.dataset}'"
            )
        options = replace(options, dataset=named.dataset, split=named.split)
        if options.source_root is None:
            options = replace(options, source_root=config.get("source_root"))
    same_dataset = options.dataset in (None, config["dataset"])
    dataset_name = options.dataset or config["dataset"]
    dataset_cls = plugins.datasets.load(dataset_name)
    split = options.split or (config["dataset_config"].get("split") if same_dataset else None)
    split = split or dataset_cls.splits[0]
    dataset_values = {
        **(config["dataset_config"] if same_dataset else {}),
        "split": split,
        **split_overrides(options.overrides)["dataset"],
    }
    dataset_values["data_root"] = options.data_root or (
        config.get("data_root") if same_dataset else None
    )
    bench = named or benchmarks.find(dataset_name, split)
    dataset_config = build_config(
        dataset_cls.Config, dataset_values, what=f"data set {dataset_name}"
    )
    protocol = protocol_for(
        bench, bench.name if bench else f"{dataset_name}-{split}", dataset_cls, options
    )
    if dataset_config.validation_classes:
        protocol = protocol.renamed(
            f"{dataset_name}-{split}-val{dataset_config.validation_classes}"
        )
    device, precision = device_and_precision(
        options.device, options.precision or config.get("precision")
    )
    return RunSpec(
        replace(options, seed=config.get("seed", 0)),
        config["method"],
        method_cls,
        build_config(method_cls.Config, config["method_config"], what=f"method {config['method']}"),
        config.get("preset"),
        config["backbone"],
        backbone_factory,
        build_config(
            backbone_factory.Config,
            config["backbone_config"],
            what=f"backbone {config['backbone']}",
        ),
        dataset_name,
        dataset_cls,
        dataset_config,
        protocol,
        device,
        precision,
    )


def load_saved(path: Path) -> dict[str, Any]:
    """A run's saved model (``checkpoint.pt``), refused in one line if it is not one."""
    from sbirbench.runtime import checkpoint

    saved = checkpoint.load(path)
    if saved.get("format") != checkpoint.MODEL_FORMAT:
        raise UserError(
            f"{path} is not an sbirbench model checkpoint (expected a run's checkpoint.pt)"
        )
    return saved


def rebuild(saved: dict[str, Any], spec: RunSpec) -> Method:
    """The saved method with its trained weights (its backbone built without reading the
    pretrained weights the checkpoint overwrites)."""
    method = spec.build_method(saved["num_classes"], pretrained=False)
    method.model().load_state_dict(saved["state"])
    return method
