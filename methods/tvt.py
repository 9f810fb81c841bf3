"""``tvt``: Three-Way Vision Transformer (Tian et al., AAAI 2022), PSKD's ancestor.

One network with two outputs: a distillation head h_D, trained to reproduce a frozen
modality teacher's output on the same image (the ImageNet network on photos, a sketch
teacher on sketches), and a fusion head h_F whose L2-normalised output f lives on a
hypersphere shared by both modalities (docs/methods/tvt.md). Per sub-batch of modality m:

    L = kd_weight * DINO(h_D(x), T_m(x)) + cls_weight * CE_smooth(W f + b, y)
        + r(t) * (ca_weight * L_CA(f, y) + uni_weight * L_UNI(f))

with r(t) the cosine ramp from 0 (first epoch) to 1 (``au_ramp_epochs``). Stage
``sketch-teacher`` makes T_S: the ImageNet network self-distilled (DINO, EMA teacher,
centring) on two random crops of the training sketches. Stage ``student`` trains the
network with both teachers frozen. Retrieval: the raw fusion feature (cosine).

[choice] The teachers' K-way output is the backbone's ImageNet classifier (its
``imagenet_logits``), where the code uses DINO's 65536-way projection head, whose last
layer no installable weights carry; so ``tvt`` needs a backbone with its ImageNet head,
as ``sake`` does. Written against the public plugin contract only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

from sbirbench.interfaces import (
    Backbone,
    Batch,
    Method,
    MethodSetup,
    ParamGroup,
    Stage,
    StageSettings,
    TrainConfig,
)

from .heads import FusionHead
from .losses import label_smoothed_ce
from .sake import imagenet_classifier
from .tvt_losses import (
    centre_alignment,
    dino_loss,
    ramp,
    teacher_temperature,
    uniformity,
    update_centre,
    world_size,
)
from .tvt_parts import DistillHead, SelfDistillation, imagenet_output, random_crops


@dataclass(frozen=True)
class TVTConfig(TrainConfig):
    """The code's defaults (docs/methods/tvt.md); ``sketch_teacher_*`` is stage one's."""

    head_hidden: int = 2048
    head_dim: int = 256
    smoothing: float = 0.1
    student_temp: float = 0.1
    teacher_temp_start: float = 0.04
    teacher_temp: float = 0.07
    teacher_temp_epochs: int = 5
    centre_momentum: float = 0.9
    kd_weight: float = 1.0
    cls_weight: float = 1.0
    ca_weight: float = 2.0
    uni_weight: float = 0.5
    au_ramp_epochs: float = 20.0
    backbone_lr_mult: float = 0.1
    embed: Literal["feature", "head"] = "feature"
    sketch_teacher_epochs: int = 50
    sketch_teacher_batch_size: int = 64
    sketch_teacher_lr: float = 1e-4
    sketch_teacher_warmup_epochs: float = 5.0
    ema_momentum: float = 0.996
    crop_scale: float = 0.4
    local_crops: int = 10
    local_crop_scale: float = 0.05
    local_crop_size: float = 96 / 224
    teacher_output: Literal["scaled", "cosine", "logits"] = "scaled"
    distill_init: Literal["teacher", "random"] = "teacher"
    freeze_last_layer_epochs: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("student_temp", "teacher_temp_start", "teacher_temp", "sketch_teacher_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be positive")
        for name in ("local_crops", "freeze_last_layer_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0")
        if not 0 < self.local_crop_scale <= self.crop_scale:
            raise ValueError(
                f"local_crop_scale={self.local_crop_scale}: must be in (0, crop_scale]"
            )
        for name in ("centre_momentum", "ema_momentum", "crop_scale", "local_crop_size"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be in (0, 1]")
        if self.sketch_teacher_epochs < 0:
            raise ValueError(f"sketch_teacher_epochs={self.sketch_teacher_epochs}: must be >= 0")


def imagenet_outputs(backbone: Backbone) -> int:
    """The size of the backbone's ImageNet head (the teachers' output), or one line."""
    return imagenet_classifier(backbone, "tvt").out_features


class TVTNet(nn.Module):
    """Backbone, h_D on the distillation feature, h_F on the fusion feature, and the
    training state that is not a parameter: the teacher-output centres per modality and
    the class centres on the hypersphere per modality (buffers, so checkpoints keep
    them)."""

    def __init__(self, backbone: Backbone, num_classes: int, config: TVTConfig) -> None:
        super().__init__()
        self.backbone: Any = backbone
        names = backbone.feature_names
        self.fusion = "fusion" if "fusion" in names else backbone.default_feature
        self.distillation = "distillation" if "distillation" in names else self.fusion
        dim, hidden = backbone.feature_dim, config.head_hidden
        self.head = FusionHead(dim, num_classes, hidden, config.head_dim)
        outputs = imagenet_outputs(backbone)
        classifier = backbone.imagenet_classifier  # type: ignore[attr-defined]
        # the student never uses its own ImageNet head (no gradient: DDP would stop)
        classifier.requires_grad_(False)
        start = classifier if config.distill_init == "teacher" else None
        self.distill_head = DistillHead(dim, hidden, config.head_dim, outputs, start,
                                        config.teacher_output, config.teacher_temp)  # fmt: skip
        for modality in ("photo", "sketch"):
            self.register_buffer(f"centre_{modality}", torch.zeros(outputs))
            self.register_buffer(f"classes_{modality}", torch.zeros(num_classes, config.head_dim))

    def heads(self) -> list[nn.Module]:
        return [self.head, self.distill_head]

    def forward(self, images: torch.Tensor, freeze_last: bool = False) -> dict[str, torch.Tensor]:
        """``freeze_last``: h_D's last layer gets a zero gradient (DINO's first epoch)."""
        features = self.backbone(images)
        logits, embedding = self.head(features[self.fusion])
        return {
            "logits": logits,
            "embedding": embedding,
            "distill": self.distill_head(features[self.distillation], freeze_last),
            "feature": features[self.fusion],
        }


class TVT(Method):
    """Sketch teacher by self-distillation, then the three-way student."""

    Config = TVTConfig
    description = "Three-Way Vision Transformer (AAAI 2022): distillation + hypersphere"

    def __init__(self, config: TVTConfig, setup: MethodSetup) -> None:
        super().__init__(config, setup)
        self.net = TVTNet(setup.backbone.build(), setup.num_classes, config)
        self.photo_teacher: nn.Module | None = None
        self.sketch: SelfDistillation | None = None
        if setup.training:
            self.photo_teacher = cast(nn.Module, setup.backbone.build())  # ImageNet, frozen
            # the sketch teacher starts as the ImageNet network (and stays it without
            # the self-distillation stage)
            self.sketch = SelfDistillation(
                copy.deepcopy(self.photo_teacher), imagenet_outputs(self.net.backbone)
            )

    def stages(self) -> list[Stage]:
        c = self.config
        stages = []
        if self.sketch is not None and c.sketch_teacher_epochs and c.epochs:
            settings = StageSettings.from_config(
                c,
                epochs=c.sketch_teacher_epochs,
                batch_size=c.sketch_teacher_batch_size,
                accum_steps=1,
                lr=c.sketch_teacher_lr,
                warmup_epochs=min(c.sketch_teacher_warmup_epochs, c.sketch_teacher_epochs),
                skt_factor=1,
            )
            fields = ("student_temp", "teacher_temp_start", "teacher_temp", "teacher_temp_epochs",
                      "centre_momentum", "ema_momentum", "crop_scale", "local_crops",
                      "local_crop_scale", "local_crop_size", "teacher_output",
                      "freeze_last_layer_epochs")  # fmt: skip
            key = {"stage": "tvt-sketch-teacher/2", "settings": asdict(settings),
                   **{f: getattr(c, f) for f in fields}}  # fmt: skip
            stages.append(
                Stage(
                    "sketch-teacher",
                    {"sketch": self.sketch},
                    self.sketch_teacher_step,
                    settings,
                    [ParamGroup("sketch_student", [self.sketch.student])],
                    reuse_key=key,
                )
            )
        frozen = {"photo_teacher": self.photo_teacher}
        if self.sketch is not None:
            frozen["sketch_teacher"] = self.sketch.teacher
        groups = [
            ParamGroup("backbone", [self.net.backbone], c.backbone_lr_mult),
            ParamGroup("heads", self.net.heads()),
        ]
        stages.append(
            Stage(
                "student",
                {"net": self.net},
                self.student_step,
                StageSettings.from_config(c),
                groups,
                {k: v for k, v in frozen.items() if v is not None},
            )
        )
        return stages

    def sketch_teacher_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """DINO on sketches: the EMA teacher moves towards the student (momentum cosine
        from ``ema_momentum`` to 1); the teacher sees two global crops, the student those
        and ``local_crops`` smaller ones, and learns the centred teacher output of every
        global crop but its own view. The photos of the batch are not used."""
        c, state = self.config, self.sketch
        assert state is not None and batch.sketches is not None
        progress = min(batch.epoch / max(c.sketch_teacher_epochs, 1), 1.0)
        momentum = 1 - (1 - c.ema_momentum) * (math.cos(math.pi * progress) + 1) / 2
        with torch.no_grad():
            pairs = zip(state.teacher.parameters(), state.student.parameters(), strict=True)
            for ema, current in pairs:
                ema.mul_(momentum).add_(current.detach(), alpha=1 - momentum)
        sketches, freeze = batch.sketches, batch.epoch < c.freeze_last_layer_epochs
        views = torch.cat([random_crops(sketches, c.crop_scale) for _ in range(2)])
        kind, scale = c.teacher_output, c.teacher_temp
        out = list(imagenet_output(state.student, views, kind, scale, freeze).chunk(2))
        if c.local_crops:
            size = max(round(sketches.shape[-1] * c.local_crop_size), 8)
            local = [random_crops(sketches, c.local_crop_scale, c.crop_scale, size)
                     for _ in range(c.local_crops)]  # fmt: skip
            out += imagenet_output(state.student, torch.cat(local), kind, scale,
                                   freeze).chunk(c.local_crops)  # fmt: skip
        with torch.no_grad():
            target = imagenet_output(state.teacher, views, kind, scale)
        tau = teacher_temperature(batch.epoch, c.teacher_temp_start, c.teacher_temp,
                                  c.teacher_temp_epochs)  # fmt: skip
        terms = [dino_loss(student, teacher, state.centre, tau, c.student_temp)
                 for i, teacher in enumerate(target.chunk(2))
                 for v, student in enumerate(out) if v != i]  # fmt: skip
        loss = torch.stack(terms).mean()
        update_centre(state.centre, target, c.centre_momentum)
        return {"loss": loss, "dino": loss.detach()}

    def student_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """L_KD + L_CLS + r(t) (L_CA + L_UNI) per modality sub-batch."""
        c, net = self.config, self.net
        assert self.photo_teacher is not None and self.sketch is not None, "built to embed only"
        teachers = {"photo": self.photo_teacher, "sketch": self.sketch.teacher}
        tau = teacher_temperature(batch.epoch, c.teacher_temp_start, c.teacher_temp,
                                  c.teacher_temp_epochs)  # fmt: skip
        r = ramp(batch.epoch, c.au_ramp_epochs)
        freeze = batch.epoch < c.freeze_last_layer_epochs
        parts: dict[str, torch.Tensor] = {}
        for modality, images, labels in batch.parts():
            out = net(images, freeze)
            with torch.no_grad():
                target = imagenet_output(teachers[modality], images, c.teacher_output,
                                         c.teacher_temp)  # fmt: skip
            centre = getattr(net, f"centre_{modality}")
            other = "sketch" if modality == "photo" else "photo"
            classes = (getattr(net, f"classes_{modality}"), getattr(net, f"classes_{other}"))
            terms = {
                "kd": dino_loss(out["distill"], target, centre, tau, c.student_temp),
                "cls": label_smoothed_ce(out["logits"], labels, c.smoothing),
                "ca": centre_alignment(*classes, out["embedding"], labels, c.centre_momentum),
                "uni": uniformity(out["embedding"]),
            }
            update_centre(centre, target, c.centre_momentum)
            for name, value in terms.items():
                parts[name] = parts.get(name, 0) + value
        # L_CA times the number of processes, as the code (undoing DDP's averaging)
        weights = {"kd": c.kd_weight, "cls": c.cls_weight, "ca": r * c.ca_weight * world_size(),
                   "uni": r * c.uni_weight}  # fmt: skip
        total = sum(weights[name] * value for name, value in parts.items())
        return {"loss": total, **parts}

    def model(self) -> nn.Module:
        return self.net

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        """The raw fusion feature (``embed=feature``, ranked by cosine) or h_F's
        normalised output (``embed=head``)."""
        out = self.net(images)
        return (out["feature"] if self.config.embed == "feature" else out["embedding"]).float()
