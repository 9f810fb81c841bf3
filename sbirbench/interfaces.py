"""The plugin contracts: data sets, backbones and methods (and their small value types;
the training schedule every stage shares is :mod:`sbirbench.schedule`).

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

from sbirbench.schedule import Schedule, StageSettings, TrainConfig, check_schedule

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
    #: for choosing hyper-parameters without the test classes (sbirbench.protocol.validation).
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
        mean, std = backbone.mean, backbone.std
        return cls(
            backbone.input_size,
            (float(mean[0]), float(mean[1]), float(mean[2])),
            (float(std[0]), float(std[1]), float(std[2])),
            str(getattr(backbone, "interpolation", "bicubic")),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "antialias": self.antialias,
        }


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
@dataclass
class Batch:
    """One micro-batch: photos always, sketches on every ``skt_factor``-th micro-step.
    ``epoch`` is the stage's progress when it was drawn, in epochs (0.5: half of the
    first epoch done), for losses with their own schedules."""

    photos: Tensor
    photo_labels: Tensor
    sketches: Tensor | None = None
    sketch_labels: Tensor | None = None
    epoch: float = 0.0

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
    ``pair_photos`` makes the i-th photo of every micro-batch a random training photo of
    the i-th sketch's class (for losses over same-class pairs; needs ``skt_factor`` 1).
    ``pair_sketches`` makes sketch 2k+1 of every micro-batch another training sketch of
    sketch 2k's class (needs an even micro-batch; with ``pair_photos``, photo 2k+1 then
    follows sketch 2k+1 as usual).
    """

    name: str
    modules: Mapping[str, nn.Module]
    training_step: Callable[[Batch], dict[str, Tensor]]
    settings: StageSettings
    param_groups: Sequence[ParamGroup] | None = None
    frozen: Mapping[str, nn.Module] = field(default_factory=dict)
    reuse_key: Mapping[str, Any] | None = None
    pair_photos: bool = False
    pair_sketches: bool = False


@dataclass(frozen=True)
class MethodSetup:
    """What a method is built from. ``training`` is False when the method is rebuilt
    only to embed (``sbirbench eval``): networks used only in training can be skipped."""

    num_classes: int
    backbone: BackboneSpec
    seed: int = 0
    training: bool = True
    #: The seen classes' names in label order (empty when rebuilt only to embed), for
    #: methods that read them (text prompts).
    class_names: tuple[str, ...] = ()


class Method(ABC):
    """A ZS-SBIR method: ordered training stages and an embedding for retrieval.

    Subclasses set ``Config`` (a frozen dataclass, usually a :class:`TrainConfig`
    subclass) and ``description``. Presets live in a TOML file beside the module (same
    name, ``.toml``), one table per preset.
    """

    Config: ClassVar[type[Any]] = TrainConfig
    description: ClassVar[str] = ""
    #: True when every ``training_step`` runs sketches and photos through the backbone in
    #: one forward pass, so train-mode BatchNorm (``batchnorm = "joint"``) learns the
    #: statistics the network is tested under. Other methods train under frozen ones.
    joint_pass: ClassVar[bool] = False

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
                return InputSpec(
                    spec.size,
                    spec.mean,
                    spec.std,
                    interpolation or spec.interpolation,
                    bool(getattr(self.config, "eval_antialias", True)),
                )
        raise TypeError(
            f"{type(self).__name__}.model() holds no Backbone module; override "
            "input_spec() to say what images it takes"
        )


class Reranker(ABC):
    """Pairwise scoring for a second retrieval stage (optional; imports neither torch nor
    timm).

    A method that also subclasses :class:`Reranker` is evaluated twice: once by the cosine
    of :meth:`Method.embed` (stage 1), and once with the top :meth:`rerank_k` photos of
    every query re-ordered by :meth:`relation`, a score of the (sketch, photo) pair itself
    (stage 2, ZSE-SBIR's relation network). Both rankings are recorded: ``metrics`` and
    ``reranked_metrics``.
    """

    @abstractmethod
    def rerank_k(self) -> int | None:
        """How many stage-1 candidates of each query to re-order (None: every photo)."""

    @abstractmethod
    def pair_tokens(self, images: Tensor, modality: Modality) -> Tensor:
        """Per-image state ``(B, N, D)`` that :meth:`relation` reads; computed once per
        test image (under ``torch.inference_mode``) and kept for every pair."""

    @abstractmethod
    def relation(self, sketch_tokens: Tensor, photo_tokens: Tensor) -> Tensor:
        """Scores ``(P,)`` of ``P`` (sketch, photo) pairs given as two ``(P, N, D)``
        stacks of :meth:`pair_tokens`; higher means more alike."""


__all__ = [
    "Backbone",
    "BackboneSpec",
    "Batch",
    "DatasetConfig",
    "InputSpec",
    "Item",
    "ItemRef",
    "Method",
    "MethodSetup",
    "Modality",
    "ParamGroup",
    "Reranker",
    "SBIRDataset",
    "Schedule",
    "Stage",
    "StageSettings",
    "Subset",
    "TrainConfig",
    "check_schedule",
]
