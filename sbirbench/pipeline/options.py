"""Step 1 of a run: what the user asked for, as one frozen value.

The CLI's flags and the keyword arguments of :func:`sbirbench.run` fill the same
:class:`RunOptions`; nothing here looks at plugins, files or devices.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sbirbench.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("cpu", "cuda")
TIE_RULES = ("shared", "index")
SELECTIONS = ("last", "best-epoch")


@dataclass(frozen=True)
class RunOptions:
    """A run as asked for: method, data, schedule flags, ``--set`` overrides, evaluation
    protocol and where it runs. ``world_size`` is the number of processes."""

    method: str
    dataset: str | None = None
    benchmark: str | None = None
    split: str | None = None
    data_root: str | None = None
    #: The source data set's folder under the cross-data-set protocol.
    source_root: str | None = None
    backbone: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    device: str | None = None
    precision: str | None = None
    world_size: int = 1
    metrics: tuple[str, ...] | None = None
    ap: str | None = None
    hash_bits: int | None = None
    ties: str = "shared"
    select: str = "last"
    #: Experiment trackers (sbirbench.tracking); not part of the run's identity.
    trackers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, allowed in (
            ("device", DEVICES),
            ("precision", PRECISIONS),
            ("ties", TIE_RULES),
            ("select", SELECTIONS),
        ):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise UserError(f"{name} must be one of {', '.join(allowed)}, not '{value}'")
        if self.world_size < 1:
            raise UserError(f"world_size must be at least 1, not {self.world_size}")

    @classmethod
    def from_keywords(cls, method: str, **values: Any) -> RunOptions:
        """Options from keyword arguments (the Python API): lists become tuples, and an
        unknown keyword is a one-line error naming the valid ones."""
        names = {f.name for f in fields(cls)} - {"method"}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(
                f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        for key in ("overrides", "metrics"):
            if isinstance(values.get(key), str):
                values[key] = (
                    (values[key],)
                    if key == "overrides"
                    else tuple(m for m in values[key].split(",") if m)
                )
            elif values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(method=method, **values)
