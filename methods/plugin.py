"""The built-in method plugin (entry point ``sbirbench = methods``)."""

from sbirbench import hookimpl
from sbirbench.plugins.hookspecs import Register


@hookimpl
def register_methods(register: Register) -> None:
    register(
        "pretrained",
        "sbirbench.methods.pretrained:Pretrained",
        description="No training: features of the (pretrained) backbone",
    )
    register(
        "pskd",
        "sbirbench.methods.pskd:PSKD",
        description="Prototype-based Selective Knowledge Distillation (ACM MM 2022)",
    )
    register(
        "ce",
        "sbirbench.methods.ce:CE",
        description="Fine-tune with label-smoothed cross-entropy (PSKD's teacher stage alone)",
    )
    register(
        "triplet",
        "sbirbench.methods.triplet:Triplet",
        description="Cross-modal triplet loss, negatives mined in the batch",
    )
    register(
        "kd",
        "sbirbench.methods.kd:KD",
        description="Plain knowledge distillation from a frozen fine-tuned teacher",
    )
    register(
        "sake",
        "sbirbench.methods.sake:SAKE",
        description="Semantic-Aware Knowledge prEservation (ICCV 2019)",
    )
    register(
        "dsn",
        "sbirbench.methods.dsn:DSN",
        description="Domain-Smoothing Network (IJCAI 2021): SAKE plus cross-modal contrast",
    )
    register(
        "tvt",
        "sbirbench.methods.tvt:TVT",
        description="Three-Way Vision Transformer (AAAI 2022): distillation + hypersphere",
    )
    register(
        "zse_sbir",
        "sbirbench.methods.zse_sbir:ZSESBIR",
        description="ZSE-SBIR (CVPR 2023): cross-attention and a token relation network",
    )
    register(
        "clip_at",
        "sbirbench.methods.clip_at:ClipAT",
        description="CLIP-AT (CVPR 2023): prompt learning on a frozen CLIP (the [clip] extra)",
    )
