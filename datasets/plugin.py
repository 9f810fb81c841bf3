"""The built-in data-set plugin (entry point ``sbirbench = datasets``)."""

from sbirbench import hookimpl
from sbirbench.plugins.hookspecs import Register


@hookimpl
def register_datasets(register: Register) -> None:
    register(
        "synthetic",
        "sbirbench.datasets.synthetic:SyntheticDataset",
        description="Embedded shapes (15 seen / 5 unseen classes, 64 px), generated, no download",
    )
    register(
        "sketchy",
        "sbirbench.datasets.sketchy:Sketchy",
        description="Sketchy Extended, 125 classes; splits zeroshot (21 unseen), random (25)",
    )
    register(
        "tuberlin",
        "sbirbench.datasets.tuberlin:TUBerlin",
        aliases=("tu-berlin",),
        description="TU-Berlin Extended, 250 classes; split zeroshot (30 unseen)",
    )
    register(
        "quickdraw",
        "sbirbench.datasets.quickdraw:QuickDraw",
        description="QuickDraw Extended, 110 classes; split zeroshot (30 unseen)",
    )
    register(
        "folder",
        "sbirbench.datasets.folder:Folder",
        description="Your own <root>/sketch/<class>, <root>/photo/<class> tree",
    )
