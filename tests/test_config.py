from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from sbirbench.config import ConfigError, build_config, split_overrides


@dataclass(frozen=True)
class Example:
    epochs: int = 5
    lr: float = 5e-4
    ila: bool = True
    combine: Literal["multiply", "add"] = "multiply"
    teacher: str | None = None
    clip: float | None = 3.0
    names: tuple[str, ...] = ("a", "b")


def test_strings_are_parsed_to_field_types():
    cfg = build_config(
        Example,
        {
            "epochs": "7",
            "lr": "1e-3",
            "ila": "false",
            "combine": "add",
            "teacher": "none",
            "clip": "null",
            "names": "x, y,z",
        },
        what="method t",
    )
    assert cfg == Example(7, 1e-3, False, "add", None, None, ("x", "y", "z"))


def test_typed_values_are_checked_too():
    assert build_config(Example, {"lr": 1, "ila": True}, what="m").lr == 1.0
    with pytest.raises(ConfigError, match="expected an integer"):
        build_config(Example, {"epochs": 2.5}, what="m")
    with pytest.raises(ConfigError, match="expected true or false"):
        build_config(Example, {"ila": "maybe"}, what="m")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", "ten", "epochs='ten' is not valid: expected an integer"),
        ("lr", "fast", "expected a number"),
        ("combine", "divide", "expected one of 'multiply', 'add'"),
        ("epochs", "True", "expected an integer"),
    ],
)
def test_bad_values_give_one_line(key, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_config(Example, {key: value}, what="method pskd")
    assert "\n" not in str(info.value) and "method pskd" in str(info.value)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        build_config(Example, {"epoch": "3"}, what="method pskd")
    assert str(info.value) == (
        "unknown key 'epoch' for method pskd; valid keys: epochs, lr, ila, combine, teacher, "
        "clip, names"
    )


def test_overrides_are_split_by_namespace():
    parts = split_overrides(
        ["epochs=3", "backbone.pretrained=true", "dataset.on_corrupt=error", "a.b=1"]
    )
    assert parts[""] == {"epochs": "3", "a.b": "1"}
    assert parts["backbone"] == {"pretrained": "true"}
    assert parts["dataset"] == {"on_corrupt": "error"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        split_overrides(["epochs"])
