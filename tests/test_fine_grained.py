"""Fine-grained zero-shot (docs/protocols.md, section 2): pairing by file name, the true
photo's rank with ties at their expected position, against plain loops, and runs."""

from __future__ import annotations

import json

import pytest
import torch

from sbirbench.metrics.fine_grained import accuracy_at, fg_metrics, pair, true_photo_ranks

from .cli_helpers import SMALL, invoke, only_run
from .conftest import SKETCHY_MINI
from .test_pretrained_weights import needs_mini, needs_weights


def test_a_sketch_is_paired_with_the_photo_its_name_starts_with_in_its_class():
    photos = [
        ("r/photo/a/n01_1.jpg", 0),
        ("r/photo/a/n01_2.jpg", 0),
        ("r/photo/b/n01_1.jpg", 1),  # the same stem in another class
        ("r/extra/a/n01_9.jpg", 0),  # another photo folder of class a
    ]
    sketches = [
        ("r/sketch/a/n01_2-3.png", 0),
        ("r/sketch/b/n01_1-1.png", 1),
        ("r/sketch/a/n01_7-1.png", 0),  # its photo is missing: dropped
        ("r/sketch/a/n01_1-2-1.png", 0),  # only the last -<k> goes: photo n01_1-2, absent
    ]
    kept, truths, groups = pair(sketches, photos, "class")
    assert kept == [0, 1] and truths == [1, 2]
    assert groups == [0, 0, 1, 2]  # one group per class and folder
    assert pair(sketches, photos, "all")[2] == [0, 0, 0, 0]
    # the same stem in a photo set and its extension: the photo of the sketch's own set
    doubled = [("r/EXTEND/a/n01_2.jpg", 0), ("r/photo/tx_0/a/n01_2.jpg", 0)]
    assert pair([("r/sketch/tx_0/a/n01_2-1.png", 0)], doubled, "class")[1] == [1]


def test_ranks_and_accuracy_match_a_plain_loop_with_ties():
    torch.manual_seed(0)
    # one-hot features: every cosine is exactly 0 or 1, so ties are many and exact
    queries = torch.eye(4)[torch.randint(0, 4, (40,))]
    gallery = torch.eye(4)[torch.randint(0, 4, (30,))]
    groups = torch.randint(0, 3, (30,))
    truths = torch.randint(0, 30, (40,))
    query_groups = groups[truths]
    higher, tied = true_photo_ranks(queries, gallery, truths, query_groups, groups, chunk=7)
    q = torch.nn.functional.normalize(queries, dim=-1)
    g = torch.nn.functional.normalize(gallery, dim=-1)
    for i in range(40):
        true = float(q[i] @ g[truths[i]])
        h = t = 0
        for j in range(30):
            if groups[j] != query_groups[i] or j == truths[i]:
                continue
            s = float(q[i] @ g[j])
            h += s > true
            t += s == true
        assert (int(higher[i]), int(tied[i])) == (h, t)
        for k in (1, 5):  # the share of the t + 1 equally likely positions within the top k
            positions = range(h + 1, h + t + 2)
            expected = sum(p <= k for p in positions) / (t + 1)
            assert float(accuracy_at(higher[i : i + 1], tied[i : i + 1], k)) == pytest.approx(
                expected
            )
    sizes = torch.bincount(groups)[query_groups]
    out = fg_metrics(higher, tied, sizes, [1, 5])
    assert out["chance"]["acc@1"] == pytest.approx(float((1 / sizes.double()).mean()))
    assert out["mean_rank"] == pytest.approx(float((higher + 1 + tied / 2).double().mean()))


def test_identical_features_score_chance(tmp_path):
    higher, tied = torch.zeros(5, dtype=torch.long), torch.full((5,), 24)
    out = fg_metrics(higher, tied, torch.full((5,), 25), [1, 5])
    assert out["metrics"] == pytest.approx(out["chance"])
    assert out["mean_rank"] == pytest.approx(out["chance_mean_rank"]) == pytest.approx(13.0)


def test_a_data_set_without_file_names_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "benchmarks.toml"
    path.write_text(
        'schema = 1\n[benchmarks.synthetic-fg]\ndataset = "synthetic"\nsplit = "default"\n'
        'version = 1\nprotocol = "fg"\nmetrics = ["acc@1", "acc@5"]\n'
    )
    monkeypatch.setenv("SBIRBENCH_BENCHMARKS", str(path))
    outcome = invoke(capsys, "run", "pretrained", "--benchmark", "synthetic-fg", *SMALL,
                     "--out", str(tmp_path / "runs"))  # fmt: skip
    assert outcome.code != 0
    assert outcome.err.strip().startswith(
        "error: the fine-grained protocol needs image files whose names keep the sketch-photo"
    )
    monkeypatch.delenv("SBIRBENCH_BENCHMARKS")
    mixed = invoke(capsys, "run", "pretrained", "--dataset", "synthetic", "--metrics",
                   "map@all,acc@1", *SMALL)  # fmt: skip
    assert mixed.code != 0 and "acc@K metrics belong to the fine-grained protocol" in mixed.err


@needs_weights
@needs_mini
def test_the_frozen_imagenet_network_on_sketchy_mini_beats_fine_grained_chance(tmp_path, capsys):
    outcome = invoke(capsys, "run", "pretrained", "--benchmark", "sketchy-21-fg",
                     "--preset", "sketchy-mini", "--data-root", str(SKETCHY_MINI),
                     "--out", str(tmp_path), "--log-format", "quiet")  # fmt: skip
    assert outcome.code == 0, outcome.err
    assert "recorded as 'sketchy-zeroshot-fg'" in outcome.err
    run = only_run(tmp_path, benchmark="sketchy-zeroshot-fg", method="pretrained")
    result = json.loads((run / "result.json").read_text())
    assert result["protocol"] == "fg" and set(result["metrics"]) == {"acc@1", "acc@5", "acc@10"}
    assert result["queries"] == 525 and result["queries_without_positives"] == 0
    fg = result["fine_grained"]
    assert fg["gallery"] == "class" and fg["gallery_size_mean"] == 25.0
    assert result["chance"]["acc@1"] == pytest.approx(1 / 25)
    # measured: acc@1 0.116 and acc@5 0.385 against chance 0.04 and 0.20
    assert result["metrics"]["acc@1"] > 2 * result["chance"]["acc@1"]
    assert result["metrics"]["acc@5"] > 1.5 * result["chance"]["acc@5"]
    assert fg["mean_rank"] < fg["chance_mean_rank"]

    # the same model evaluated again under plain zero-shot: `eval --benchmark`
    again = invoke(capsys, "eval", str(run), "--benchmark", "sketchy-21", "--log-format", "quiet")
    assert again.code == 0, again.err
    zs = json.loads((run / "eval-sketchy-zeroshot.json").read_text())
    assert zs["protocol"] == "zs" and zs["metrics"]["map@all"] > zs["chance"]["map@all"]
