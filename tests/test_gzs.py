"""Generalised zero-shot (docs/protocols.md, section 1): the hold-out rule, the data set
view, the benchmark table, and a run that records the seen/unseen breakdown."""

from __future__ import annotations

import json
import math
import random

import pytest

from sbirbench.errors import UserError
from sbirbench.pipeline.resolve import Protocol
from sbirbench.protocol.benchmarks import load_benchmarks
from sbirbench.protocol.gzs import GZSOptions, GZSView, allocate, held_out
from sbirbench.testing import ToyConfig, ToyDataset

from .cli_helpers import SMALL, invoke, only_run


def test_allocation_is_largest_remainder_with_ties_by_name_and_a_cap():
    # quotas 10 * (3, 3, 4) / 10 = 3, 3, 4: exact
    assert allocate(10, {"a": 3, "b": 3, "c": 4}) == {"a": 2, "b": 2, "c": 3}  # capped at n-1
    # quotas 2 * (5, 5, 5) / 15 = 0.67 each: two units go to the first two names
    assert allocate(2, {"c": 5, "a": 5, "b": 5}) == {"a": 1, "b": 1, "c": 0}
    shares = allocate(7, {"x": 10, "y": 30, "z": 20})  # 1.17, 3.5, 2.33 -> 1, 4, 2
    assert shares == {"x": 1, "y": 4, "z": 2} and sum(shares.values()) == 7
    assert allocate(0, {"a": 5}) == {"a": 0} and allocate(3, {}) == {}


class Shuffled(ToyDataset):
    """The same items, listed in another order (as another file system might)."""

    def items(self, subset, modality):
        items = list(super().items(subset, modality))
        random.Random(7).shuffle(items)
        return items


def toy(cls=ToyDataset, **changes):
    return cls(ToyConfig(classes=8, unseen=3, per_class=10, **changes))


def test_the_held_out_items_do_not_depend_on_listing_order_and_follow_the_count():
    options = GZSOptions(seed=0)
    chosen = held_out(toy(), options)
    assert chosen == held_out(toy(Shuffled), options)
    for modality in ("sketch", "photo"):
        assert len(chosen[modality]) == math.floor(0.2 * 30)  # 20% of 3 x 10 unseen items
    assert held_out(toy(), GZSOptions(seed=1)) != chosen
    fraction = held_out(toy(), GZSOptions(count="fraction"))
    assert len(fraction["sketch"]) == math.floor(0.2 * 50)  # 20% of 5 x 10 seen items


@pytest.mark.parametrize("holdout", [True, False])
def test_the_view_moves_the_held_out_images_into_the_test_set(holdout):
    base = toy()
    view = GZSView(base, GZSOptions(holdout=holdout))
    assert view.unseen_classes == base.unseen_classes + base.seen_classes
    for modality in ("sketch", "photo"):
        held = view.held[modality]
        train = view.items("train", modality)
        test = view.items("test", modality)
        assert len(held) == 6
        assert list(test[: len(base.items("test", modality))]) == list(base.items("test", modality))
        moved = test[len(base.items("test", modality)) :]
        assert {str(ref) for ref, _ in moved} == held
        for ref, label in moved:  # a seen label, shifted past the unseen ones
            assert view.is_seen_label(label)
            assert base.labels[int(ref)] == label - view.unseen_count
        in_train = {str(ref) for ref, _ in train}
        assert (in_train & held == set()) is holdout
        assert len(train) == len(base.items("train", modality)) - (6 if holdout else 0)


def test_a_gzs_measurement_on_a_subset_keeps_its_protocol_in_the_name():
    protocol = Protocol("sketchy-21-gzs", 1, ("map@200",), kind="gzs", gzs=GZSOptions())
    assert protocol.renamed("sketchy-zeroshot").benchmark == "sketchy-zeroshot-gzs"
    assert Protocol("sketchy-21", 1, ("map@200",)).renamed("sketchy-zeroshot").benchmark == (
        "sketchy-zeroshot"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('protocol = "fgz"', "'protocol' must be one of zs, gzs, fg, cross, got 'fgz'"),
        ("[benchmarks.b.gzs]\nseed = 1", "a 'gzs' table needs protocol = \"gzs\""),
        ('protocol = "gzs"\n[benchmarks.b.gzs]\nshare = 0.3', "unknown gzs option(s) share"),
        ('protocol = "gzs"\n[benchmarks.b.gzs]\ncount = "all"', "count must be sem-pcyc or"),
    ],
)
def test_a_bad_protocol_table_is_one_line(tmp_path, monkeypatch, table, message):
    path = tmp_path / "benchmarks.toml"
    path.write_text(
        'schema = 1\n[benchmarks.b]\ndataset = "synthetic"\nsplit = "default"\nversion = 1\n'
        f'metrics = ["map@all"]\n{table}\n'
    )
    monkeypatch.setenv("SBIRBENCH_BENCHMARKS", str(path))
    with pytest.raises(UserError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_benchmarks()


def test_a_gzs_run_records_the_seen_and_unseen_parts_and_their_harmonic_mean(tmp_path, capsys):
    outcome = invoke(capsys, "run", "ce", "--benchmark", "synthetic-gzs", "--epochs", "1",
                     *SMALL, "--out", str(tmp_path))  # fmt: skip
    assert outcome.code == 0, outcome.err
    run = only_run(tmp_path, benchmark="synthetic-gzs")
    result = json.loads((run / "result.json").read_text())
    assert result["protocol"] == "gzs" and result["benchmark"] == "synthetic-gzs"
    gzs = result["gzs"]
    assert gzs["queries"] == {"unseen": 40, "seen": 8}  # 5 unseen classes x 8; 20% of 40
    assert gzs["gallery"] == {"unseen": 40, "seen": 8}
    assert result["queries"] == 48 and result["gallery"] == 48
    for metric in result["metrics"]:
        a, b = gzs["unseen"][metric], gzs["seen"][metric]
        assert gzs["h"][metric] == pytest.approx(2 * a * b / (a + b) if a + b else 0.0)
    info = result["dataset_info"]["gzs"]
    assert info["held_out"] == {"sketch": 8, "photo": 8} and info["holdout"] is True
    # per-class AP: the 5 unseen classes and the 8 seen ones with a held-out sketch (the 8
    # units go to 8 of the 15 equal seen classes, one each)
    assert len(result["per_class_ap"]) == 13

    # a model trained on the plain split has seen the held-out images: eval refuses
    plain = invoke(capsys, "run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL,
                   "--out", str(tmp_path / "plain"))  # fmt: skip
    assert plain.code == 0, plain.err
    model = only_run(tmp_path / "plain")
    refused = invoke(capsys, "eval", str(model), "--benchmark", "synthetic-gzs")
    assert refused.code != 0 and refused.err.strip() == (
        "error: synthetic-gzs holds out seen images this model may have been trained on (it "
        "was trained on other data or another hold-out); train it with --benchmark "
        "synthetic-gzs"
    )
    same = invoke(capsys, "eval", str(run), "--log-format", "quiet")  # its own benchmark
    assert same.code == 0, same.err
    assert json.loads((run / "eval-synthetic-gzs.json").read_text())["gzs"]["queries"] == {
        "unseen": 40,
        "seen": 8,
    }
