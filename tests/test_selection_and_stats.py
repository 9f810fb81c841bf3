"""Best-epoch selection (labelled), the validation split, intervals and paired tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sbirbench.results.stats import chance_level, paired_test, t_interval

from .cli_helpers import SMALL, invoke, only_run


def test_t_interval_matches_the_textbook_values():
    interval = t_interval([0.10, 0.12, 0.14])
    assert interval.mean == pytest.approx(0.12)
    assert interval.half_width == pytest.approx(4.303 * 0.02 / np.sqrt(3), rel=1e-4)
    assert t_interval([0.5]).half_width is None


def test_paired_test_finds_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    better = base + 0.02 + rng.normal(0, 0.05, 400)
    test = paired_test(better, base)
    assert (
        test.p_value < 0.01
        and test.low > 0
        and test.difference == pytest.approx(np.mean(better - base))
    )
    same = paired_test(base + rng.normal(0, 0.05, 400), base)
    assert (same.p_value > 0.01 and same.low < 0 < same.high) or same.p_value > 0.05
    with pytest.raises(ValueError, match="different numbers"):
        paired_test(base, base[:-1])


def test_chance_level_of_a_balanced_gallery():
    labels = np.repeat(np.arange(20), 30)
    chance = chance_level(labels, labels, ["prec@100", "map@all"], draws=5)
    assert chance["prec@100"] == pytest.approx(1 / 20, abs=0.003)
    assert 0.05 < chance["map@all"] < 0.08


def test_best_epoch_selection_is_labelled_and_reported(tmp_path, capsys):
    outcome = invoke(
        capsys,
        "run",
        "ce",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        *SMALL,
        "--out",
        str(tmp_path),
        "--select",
        "best-epoch",
    )
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path)
    result = json.loads((run / "result.json").read_text())
    selection = result["model_selection"]
    assert selection["rule"] == "best-epoch" and "test classes" in selection["description"]
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    values = [h["selection"]["value"] for h in history]
    assert selection["value"] == max(values) and selection["epoch"] == 1 + values.index(max(values))
    assert result["metrics"]["map@all"] == pytest.approx(max(values), abs=1e-9)
    assert result["config"]["select"] == "best-epoch"
    plain = invoke(
        capsys,
        "run",
        "ce",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        *SMALL,
        "--out",
        str(tmp_path / "plain"),
    )
    assert plain.code == 0
    last = json.loads((only_run(tmp_path / "plain") / "result.json").read_text())
    assert last["model_selection"]["rule"] == "last" and "select" not in last["config"]
    assert last["config_hash"] != result["config_hash"]


def test_validation_split_never_touches_the_unseen_classes(tmp_path, capsys):
    from sbirbench.pipeline.resolve import build_dataset

    full = build_dataset("synthetic", None, None)
    view = build_dataset("synthetic", None, None, ["dataset.validation_classes=4"])
    assert set(view.unseen_classes) <= set(full.seen_classes)
    assert not set(view.unseen_classes) & set(full.unseen_classes)
    assert len(view.seen_classes) == len(full.seen_classes) - 4
    test_refs = {ref for ref, _ in view.items("test", "photo")}
    assert not test_refs & {ref for ref, _ in full.items("test", "photo")}
    assert not test_refs & {ref for ref, _ in view.items("train", "photo")}
    outcome = invoke(
        capsys,
        "run",
        "pretrained",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--set",
        "dataset.validation_classes=4",
        "--log-format",
        "jsonl",
    )
    assert outcome.code == 0, outcome.err
    result = next(r for r in outcome.json_lines() if r.get("event") == "result")
    assert result["benchmark"] == "synthetic-default-val4"
    bad = invoke(
        capsys,
        "run",
        "pretrained",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path),
        "--set",
        "dataset.validation_classes=99",
    )
    assert bad.code == 2 and "must be between 1 and" in bad.err
