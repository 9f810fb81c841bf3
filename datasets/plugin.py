"""The built-in data-set plugin (entry point ``sbirbench = datasets``)."""

from sbirbench import hookimpl
from sbirbench.hookspecs import Register


@hookimpl
def register_datasets(register: Register) -> None:
    register(
        "synthetic",
        "sbirbench.datasets.synthetic:SyntheticDataset",
        description="Embedded shapes (15 seen / 5 unseen classes, 64 px), generated, no download",
    )
