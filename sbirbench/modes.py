"""Train and eval modes of modules: BatchNorm kept on its running statistics while the
rest trains, and evaluation that gives every submodule back the mode it had."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


def freeze_batchnorm(model: nn.Module) -> int:
    """Put every BatchNorm layer of ``model`` in eval mode: it normalises with its running
    statistics and leaves them as they are, while its affine parameters still train.
    Returns how many layers it froze."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.eval()
    return len(layers)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block, then each submodule back in its own earlier
    mode (``model.train(was_training)`` would unfreeze frozen BatchNorm layers)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
