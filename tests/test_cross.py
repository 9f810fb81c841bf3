"""Cross-data-set zero-shot (docs/protocols.md, section 3): Sketchy trains, TU-Berlin's
unseen classes test, the overlapping classes are dropped and named."""

from __future__ import annotations

import json

import pytest

from sbirbench.datasets.sketchy import Sketchy
from sbirbench.datasets.tuberlin import TUBerlin
from sbirbench.protocol.classnames import normalize
from sbirbench.protocol.cross import CrossOptions, CrossView

from .cli_helpers import invoke, only_run
from .conftest import SKETCHY_MINI
from .dataset_trees import classes_for, folder_tree
from .test_pretrained_weights import needs_mini

#: docs/protocols.md: the Sketchy classes that are TU-Berlin-30 unseen classes
OVERLAP_TUBERLIN = {
    "banana", "fan", "penguin", "shoe", "hot air balloon", "pizza", "ant", "windmill",
    "table", "bread", "horse",
}  # fmt: skip


def tuberlin_tree(tmp_path):
    seen, unseen = classes_for("tuberlin", "zeroshot")
    folder_tree(tmp_path / "tuberlin", "sketch", ["photo"], seen + unseen)
    return TUBerlin(TUBerlin.Config(data_root=str(tmp_path), split="zeroshot"))


@needs_mini
@pytest.mark.parametrize("overlap", ["drop_train", "drop_test"])
def test_sketchy_trains_and_tuberlin_tests_without_the_shared_classes(tmp_path, overlap):
    source = Sketchy(Sketchy.Config(data_root=str(SKETCHY_MINI), split="zeroshot"))
    target = tuberlin_tree(tmp_path)
    view = CrossView(source, target, CrossOptions("sketchy", "zeroshot", overlap))
    dropped = {normalize(c) for c in view.overlapping}
    assert dropped == {normalize(c) for c in OVERLAP_TUBERLIN}
    if overlap == "drop_train":
        assert len(view.seen_classes) == 125 - 11
        assert view.unseen_classes == target.unseen_classes
        assert len(view.items("train", "sketch")) == 114 * 25
    else:
        assert len(view.seen_classes) == 125 and len(view.unseen_classes) == 30 - 11
        assert not {normalize(c) for c in view.unseen_classes} & dropped
    for modality in ("sketch", "photo"):
        train, test = view.items("train", modality), view.items("test", modality)
        assert {view.seen_classes[label] for _, label in train} == set(view.seen_classes)
        assert all(str(ref).startswith(str(SKETCHY_MINI)) for ref, _ in train)
        assert all(str(ref).startswith(str(tmp_path)) for ref, _ in test)
        view.open(train[0][0], modality)  # each item is read by its own data set
        view.open(test[0][0], modality)
    assert view.describe()["cross"]["dropped_classes"] == sorted(view.overlapping)


@needs_mini
def test_a_cross_data_set_run_records_its_source_and_dropped_classes(tmp_path, capsys):
    tuberlin_tree(tmp_path / "data")
    outcome = invoke(capsys, "run", "pretrained", "--benchmark", "sketchy-to-tuberlin-30",
                     "--preset", "cpu-smoke", "--data-root", str(tmp_path / "data"),
                     "--source-root", str(SKETCHY_MINI), "--out", str(tmp_path / "runs"),
                     "--log-format", "quiet")  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert "recorded as 'sketchy-to-tuberlin-zeroshot'" in outcome.err  # a tiny test set
    run = only_run(tmp_path / "runs", benchmark="sketchy-to-tuberlin-zeroshot", method="pretrained")
    result = json.loads((run / "result.json").read_text())
    assert result["protocol"] == "cross" and result["queries"] == 30
    cross = result["dataset_info"]["cross"]
    assert cross["training_classes"] == 114 and len(cross["dropped_classes"]) == 11
    assert cross["source"]["name"] == "sketchy"


@needs_mini
def test_dropping_the_shared_classes_from_the_test_set_renames_the_benchmark(
    tmp_path, capsys, monkeypatch
):
    tuberlin_tree(tmp_path / "data")
    path = tmp_path / "benchmarks.toml"
    path.write_text(
        'schema = 1\n[benchmarks.sk-to-tu]\ndataset = "tuberlin"\nsplit = "zeroshot"\n'
        'version = 1\nprotocol = "cross"\nmetrics = ["map@all"]\ntest_size = [30, 30]\n'
        '[benchmarks.sk-to-tu.cross]\nsource = "sketchy"\nsource_split = "zeroshot"\n'
        'overlap = "drop_test"\n'
    )  # the tiny tree's full test set: 30 x 30 before the 11 shared classes go
    monkeypatch.setenv("SBIRBENCH_BENCHMARKS", str(path))
    outcome = invoke(capsys, "run", "pretrained", "--benchmark", "sk-to-tu", "--preset",
                     "cpu-smoke", "--data-root", str(tmp_path / "data"), "--source-root",
                     str(SKETCHY_MINI), "--out", str(tmp_path / "runs"),
                     "--log-format", "quiet")  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert "(19 sketches x 19 photos) is not sk-to-tu's (30 x 30)" in outcome.err
    run = only_run(tmp_path / "runs", benchmark="sketchy-to-tuberlin-zeroshot", method="pretrained")
    assert json.loads((run / "result.json").read_text())["queries"] == 19
