"""The three plugin contracts: data sets, backbones and methods.

This module imports neither torch nor timm; tensor types appear only in annotations.

Vocabulary: a data set's *split* (``--split``) chooses which classes are unseen; each
split has two *subsets*: ``train`` (every image of the seen classes) and ``test``
(every image of the unseen classes: sketches are the queries, photos the gallery).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor, nn

Subset = Literal["train", "test"]
Modality = Literal["sketch", "photo"]

#: One image of a data set: a file path or an index the data set understands, and a label.
#: Train labels index ``seen_classes``; test labels index ``unseen_classes``.
ItemRef = str | int
Item = tuple[ItemRef, int]


# --------------------------------------------------------------------------- data sets
@dataclass(frozen=True)
class DatasetConfig:
    """Options every data set accepts (plugins subclass this to add their own).

    ``data_root`` and ``split`` come from ``--data-root`` and ``--split``; other fields
    from ``--set dataset.KEY=VALUE``.
    """

    data_root: str | None = None
    split: str | None = None
    on_corrupt: Literal["skip", "error"] = "skip"
    #: Hold out this many seen classes as the test set (0: the real unseen classes);
    #: for choosing hyper-parameters without the test classes (sbirbench.validation).
    validation_classes: int = 0
    validation_seed: int = 0


class SBIRDataset(ABC):
    """A sketch/photo data set with a seen/unseen class split.

    Subclasses set ``name``, ``Config`` and ``splits`` (the first is the default), and
    implement the class lists, :meth:`items` and :meth:`open`.
    """

    name: ClassVar[str]
    Config: ClassVar[type[DatasetConfig]] = DatasetConfig
    #: Allowed values of ``--split``; the first is the default.
    splits: ClassVar[tuple[str, ...]] = ("default",)
    #: Metrics of the default protocol, used when no benchmark is named.
    default_metrics: ClassVar[tuple[str, ...]] = ("map@all", "map@200", "prec@100", "prec@200")

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config

    @property
    def split(self) -> str:
        """The class split in use."""
        return self.config.split or self.splits[0]

    @property
    @abstractmethod
    def seen_classes(self) -> list[str]:
        """Training classes, in label order."""

    @property
    @abstractmethod
    def unseen_classes(self) -> list[str]:
        """Test classes, in label order."""

    @abstractmethod
    def items(self, subset: Subset, modality: Modality) -> Sequence[Item]:
        """The (ref, label) pairs of one subset and modality, in a fixed order."""

    @abstractmethod
    def open(self, ref: ItemRef, modality: Modality) -> Image.Image:
        """Load one image as RGB; raise ``OSError`` (or a subclass) if it is unreadable."""

    def describe(self) -> dict[str, Any]:
        """Facts for ``sbirbench data check`` and result provenance (layout, root, ...)."""
        return {"name": self.name, "split": self.split}


# --------------------------------------------------------------------------- backbones
@runtime_checkable
class Backbone(Protocol):
    """The contract of a backbone module (an ``nn.Module``).

    A registered backbone is a callable ``factory(config) -> Backbone`` with a ``Config``
    dataclass attribute; ``forward(images)`` returns named features, each ``(B, D)`` or,
    for per-token outputs, ``(B, N, D)``.
    """

    feature_dim: int
    feature_names: tuple[str, ...]
    default_feature: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: Tensor) -> dict[str, Tensor]: ...


@dataclass(frozen=True)
class InputSpec:
    """What a model's images must look like: ``size x size`` pixels, normalised with
    ``mean``/``std``, resized with ``interpolation`` (``antialias`` for evaluation; the
    training crops always antialias). Comes from the backbone's weights (their data
    config) unless a method's config says otherwise."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    antialias: bool = True

    @classmethod
    def of(cls, backbone: Backbone) -> InputSpec:
        """The input spec a backbone's weights ask for."""
        return cls(backbone.input_size, tuple(backbone.mean), tuple(backbone.std),  # type: ignore[arg-type]
                   str(getattr(backbone, "interpolation", "bicubic")))

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "antialias": self.antialias}


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone chosen for a run: its registered name and resolved config."""

    name: str
    factory: Callable[[Any], Backbone]
    config: Any

    def build(self) -> Backbone:
        """A fresh instance (with the configured pretrained weights, if any)."""
        return self.factory(self.config)


# --------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters every method shares; method Configs subclass this.

    ``batch_size`` counts photos per optimiser step per process; each step is split into
    ``accum_steps`` micro-batches, and a sketch micro-batch of the same size joins every
    ``skt_factor``-th one (0: photos only). The peak learning rate is
    ``lr * global_batch / lr_ref_batch``.
    """

    backbone: str = "vit_tokens_tiny"
    epochs: int = 10
    batch_size: int = 64
    accum_steps: int = 1
    lr: float = 5e-4
    lr_ref_batch: int = 256
    min_lr: float = 1e-6
    warmup_epochs: float = 1.0
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    clip_grad: float | None = 3.0
    clip_mode: Literal["param", "global"] = "param"
    skt_factor: int = 2
    augment: Literal["dino", "basic", "none"] = "dino"
    #: Evaluation resize: None keeps the interpolation of the backbone's weights.
    eval_interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    eval_antialias: bool = True

    def __post_init__(self) -> None:
        check_schedule(self)


def check_schedule(settings: Any) -> None:
    """Raise ``ValueError`` naming the first out-of-range schedule field of ``settings``
    (a TrainConfig or StageSettings). Run when a config is built, so a bad value stops a
    run before any training (the config builder turns it into a one-line error)."""
    at_least = {"epochs": 0, "batch_size": 1, "accum_steps": 1, "lr_ref_batch": 1,
                "skt_factor": 0, "min_lr": 0, "warmup_epochs": 0, "weight_decay": 0,
                "weight_decay_end": 0}
    for name, low in at_least.items():
        value = getattr(settings, name, None)
        if value is not None and value < low:
            raise ValueError(f"{name}={value}: must be at least {low}")
    for name in ("lr", "clip_grad"):
        value = getattr(settings, name, None)
        if value is not None and value <= 0:
            raise ValueError(f"{name}={value}: must be positive")
    if settings.batch_size % settings.accum_steps:
        raise ValueError(f"batch_size {settings.batch_size} is not a multiple of accum_steps "
                         f"{settings.accum_steps}")


@dataclass(frozen=True)
class StageSettings:
    """How the engine trains one stage."""

    epochs: int
    batch_size: int
    accum_steps: int = 1
    lr: float = 5e-4
    lr_ref_batch: int = 256
    min_lr: float = 1e-6
    warmup_epochs: float = 0.0
    weight_decay: float = 0.04
    weight_decay_end: float | None = None
    clip_grad: float | None = None
    clip_mode: Literal["param", "global"] = "param"
    skt_factor: int = 1
    augment: Literal["dino", "basic", "none"] = "dino"

    def __post_init__(self) -> None:
        check_schedule(self)

    @classmethod
    def from_config(cls, config: TrainConfig, **changes: Any) -> StageSettings:
        """Settings taken from a method's :class:`TrainConfig` fields, with ``changes``."""
        names = {f for f in cls.__dataclass_fields__}
        values = {name: getattr(config, name) for name in names if hasattr(config, name)}
        values.update(changes)
        return cls(**values)


@dataclass
class Batch:
    """One micro-batch: photos always, sketches on every ``skt_factor``-th micro-step."""

    photos: Tensor
    photo_labels: Tensor
    sketches: Tensor | None = None
    sketch_labels: Tensor | None = None

    def parts(self) -> list[tuple[Modality, Tensor, Tensor]]:
        """``(modality, images, labels)`` for each modality present."""
        out: list[tuple[Modality, Tensor, Tensor]] = [("photo", self.photos, self.photo_labels)]
        if self.sketches is not None and self.sketch_labels is not None:
            out.append(("sketch", self.sketches, self.sketch_labels))
        return out


@dataclass
class ParamGroup:
    """Parameters that share a learning-rate multiplier (weight decay is decided per
    parameter by the engine: none on biases and norm weights)."""

    name: str
    modules: Sequence[nn.Module]
    lr_mult: float = 1.0


@dataclass
class Stage:
    """One training stage.

    ``modules`` are trained (and wrapped for DDP together); ``training_step(batch)``
    returns a dict with the total ``"loss"`` and any named parts to report. ``frozen``
    modules are used without gradients and kept in eval mode. ``param_groups`` default to
    one group holding every trainable parameter of ``modules``. ``reuse_key``, when
    given, is everything (besides backbone, data, seed, world size and precision) the
    stage's result depends on: a run whose saved stage output has the same key lends it
    instead of training the stage again (e.g. one teacher for several students).
    """

    name: str
    modules: Mapping[str, nn.Module]
    training_step: Callable[[Batch], dict[str, Tensor]]
    settings: StageSettings
    param_groups: Sequence[ParamGroup] | None = None
    frozen: Mapping[str, nn.Module] = field(default_factory=dict)
    reuse_key: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MethodSetup:
    """What a method is built from. ``training`` is False when the method is rebuilt
    only to embed (``sbirbench eval``): networks used only in training can be skipped."""

    num_classes: int
    backbone: BackboneSpec
    seed: int = 0
    training: bool = True


class Method(ABC):
    """A ZS-SBIR method: ordered training stages and an embedding for retrieval.

    Subclasses set ``Config`` (a frozen dataclass, usually a :class:`TrainConfig`
    subclass) and ``description``. Presets live in a TOML file beside the module (same
    name, ``.toml``), one table per preset.
    """

    Config: ClassVar[type[Any]] = TrainConfig
    description: ClassVar[str] = ""

    def __init__(self, config: Any, setup: MethodSetup) -> None:
        self.config = config
        self.setup = setup

    @abstractmethod
    def stages(self) -> list[Stage]:
        """The training stages, in order (empty for a method that does not train)."""

    @abstractmethod
    def model(self) -> nn.Module:
        """The module(s) :meth:`embed` uses; its state is what evaluation checkpoints hold."""

    @abstractmethod
    def embed(self, images: Tensor, modality: Modality) -> Tensor:
        """Features ``(B, D)`` for retrieval (called under ``torch.inference_mode``)."""

    def input_spec(self) -> InputSpec:
        """The images this method's model takes. The default: the first Backbone module of
        :meth:`model` (its weights' data config), with the evaluation resize of the
        config's ``eval_interpolation``/``eval_antialias`` fields where it has them.
        Override when the model's inputs are decided otherwise."""
        for module in self.model().modules():
            if isinstance(module, Backbone):
                spec = InputSpec.of(module)
                interpolation = getattr(self.config, "eval_interpolation", None)
                return InputSpec(spec.size, spec.mean, spec.std,
                                 interpolation or spec.interpolation,
                                 bool(getattr(self.config, "eval_antialias", True)))
        raise TypeError(f"{type(self).__name__}.model() holds no Backbone module; override "
                        "input_spec() to say what images it takes")
