"""``open_clip``: the image tower of an open_clip CLIP model, with optional prompt tokens.

open_clip is an optional extra (``sbirbench[clip]``). The tower's ``forward(images,
extra_tokens)`` is open_clip's ``VisionTransformer.forward`` with the extra (B, K, width)
tokens appended after the class and patch tokens, after the position embedding and
before ``ln_pre`` (CLIP-AT's shallow prompts, docs/methods/clip-at.md). open_clip's own
``_embeds`` applies ``ln_pre`` itself, so the steps are written out here.

No CLIP weights can be downloaded offline: ``weights=PATH`` loads a local state dict
(open_clip's ``open_clip_pytorch_model.bin`` or ``.safetensors`` of a hub repo);
``pretrained=true`` asks open_clip to download ``tag``; neither builds a randomly
initialised model (for tests).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from sbirbench.errors import UserError
from sbirbench.weights.files import file_sha256


@dataclass(frozen=True)
class OpenClipConfig:
    """Options of ``open_clip`` (``--set backbone.KEY=VALUE``)."""

    #: An open_clip model name; OpenAI's weights need the QuickGELU variant.
    model: str = "ViT-B-32-quickgelu"
    #: A local state-dict file of this model's weights.
    weights: str | None = None
    #: Download open_clip's weights ``tag`` (needs the internet).
    pretrained: bool = False
    tag: str = "openai"
    #: A folder of extra open_clip model configs (``NAME.json``) to register first.
    model_config_dir: str | None = None


#: sbirbench's own open_clip configs: ``sbirbench-tiny-clip``, a CPU-sized CLIP (32 px,
#: patch 16, width 64, 2 layers) for tests and the cpu-smoke presets.
TINY_CONFIGS = Path(__file__).with_name("open_clip_configs")


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError:
        raise UserError(
            "the open_clip backbone needs open_clip: pip install 'sbirbench[clip]'"
        ) from None
    return open_clip


class OpenClipTower(nn.Module):
    """An open_clip image tower: ``embed`` (B, E) after the projection, ``pooled`` (B,
    width) and patch ``tokens`` (B, N, width); and the model's text encoder until
    :meth:`drop_text`."""

    Config: ClassVar[type[OpenClipConfig]] = OpenClipConfig
    feature_names = ("embed", "pooled", "tokens")
    default_feature = "embed"

    def __init__(self, config: OpenClipConfig) -> None:
        super().__init__()
        open_clip = _import_open_clip()
        open_clip.add_model_config(TINY_CONFIGS)
        if config.model_config_dir:
            open_clip.add_model_config(config.model_config_dir)
        if config.model not in open_clip.list_models():
            raise UserError(f"open_clip has no model '{config.model}' (open_clip.list_models())")
        self.config = config
        model = self._create(open_clip, config)
        visual = model.visual
        if getattr(visual, "attn_pool", None) is not None or visual.final_ln_after_pool:
            raise UserError(
                f"open_clip model {config.model}: only class-token pooling is supported"
            )
        if getattr(visual, "pool_type", "tok") != "tok":
            raise UserError(f"open_clip model {config.model}: pool_type must be 'tok'")
        self.visual: Any = visual
        self.width = int(visual.positional_embedding.shape[-1])
        self.feature_dim = int(visual.output_dim)
        size = visual.image_size
        self.input_size = int(size[0] if isinstance(size, tuple | list) else size)
        preprocess = getattr(visual, "preprocess_cfg", {}) or {}
        self.mean = tuple(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(preprocess.get("std", open_clip.OPENAI_DATASET_STD))
        self.interpolation = str(preprocess.get("interpolation", "bicubic"))
        #: exp(logit_scale) of the weights: CLIP's inverse temperature (frozen).
        self.logit_scale = float(model.logit_scale.detach().exp())
        # The text tower is not a submodule: it never trains and never enters a checkpoint.
        self._text: list[Any] = [model, open_clip.get_tokenizer(config.model)]

    def _create(self, open_clip: Any, config: OpenClipConfig) -> Any:
        source = None
        if config.weights:
            path = Path(config.weights).expanduser()
            if not path.is_file():
                raise UserError(f"backbone.weights: no file {path}")
            if path.suffix == ".pt" and _is_torchscript(path):
                raise UserError(
                    f"{path} is a TorchScript archive (OpenAI's .pt), which torch does not "
                    "load with weights_only; save its state_dict() once and point "
                    "backbone.weights at that file"
                )
            source = str(path)
        elif config.pretrained:
            source = config.tag
        try:
            model = open_clip.create_model(config.model, pretrained=source)
        except (RuntimeError, OSError, ValueError, pickle.UnpicklingError) as error:
            if config.pretrained and not config.weights:
                raise UserError(
                    f"could not download open_clip weights '{config.tag}' for "
                    f"{config.model} ({str(error).splitlines()[0]}); offline, set "
                    "backbone.weights=PATH to a local state dict"
                ) from None
            raise UserError(
                f"open_clip could not load {source}: {str(error).splitlines()[0]}"
            ) from None
        self.weights_source = (
            {"file": source, "sha256": file_sha256(Path(source))}
            if config.weights and source
            else ({"open_clip_tag": config.tag} if config.pretrained else None)
        )
        return model

    def describe_init(self) -> dict[str, Any]:
        """Where the weights came from (recorded in results)."""
        return {"weights": self.weights_source or "random initialisation (no weights)"}

    def forward(
        self, images: torch.Tensor, extra_tokens: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        v = self.visual
        x = v.conv1(images)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (B, grid^2, width)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        x = v.patch_dropout(x)
        patches = x.shape[1] - 1
        if extra_tokens is not None:
            x = torch.cat([x, extra_tokens.to(x.dtype).expand(x.shape[0], -1, -1)], dim=1)
        x = v.ln_pre(x)
        if not getattr(v.transformer, "batch_first", True):
            x = v.transformer(x.transpose(0, 1)).transpose(0, 1)
        else:
            x = v.transformer(x)
        x = v.ln_post(x)
        pooled = x[:, 0]
        embed = pooled @ v.proj if v.proj is not None else pooled
        return {"embed": embed, "pooled": pooled, "tokens": x[:, 1 : 1 + patches]}

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """``(N, E)`` text embeddings (not normalised) from the same model's text tower."""
        if not self._text:
            raise RuntimeError("the text tower was dropped")
        model, tokenizer = self._text
        model.eval()
        return model.encode_text(tokenizer(texts)).float()

    def drop_text(self) -> None:
        """Free the text tower (after the class embeddings are computed)."""
        self._text.clear()


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding ``constants.pkl`` or ``code/``."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
