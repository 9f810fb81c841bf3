"""``sbirbench data export``: a subset's images as files in class folders, the same
pixels the data set gives, and an interrupted export resumes."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sbirbench.datasets.synthetic import SyntheticDataset as Synthetic

from .cli_helpers import invoke

SIZE = ["--set", "sketches_per_class=3", "--set", "photos_per_class=4"]


def test_export_writes_every_image_by_class_and_resumes(tmp_path, capsys):
    out = tmp_path / "photos"
    first = invoke(capsys, "data", "export", "--dataset", "synthetic", *SIZE, "--out", str(out))
    assert first.code == 0, first.err
    dataset = Synthetic(Synthetic.Config(sketches_per_class=3, photos_per_class=4))
    items = dataset.items("test", "photo")
    files = sorted(out.rglob("*.png"))
    assert f"{len(items)} images written, 0 already there" in first.out
    assert {p.parent.name for p in files} == set(dataset.unseen_classes)
    ref, label = items[0]
    [path] = list(out.glob(f"*/00000-{ref}.png"))
    assert path.parent.name == dataset.unseen_classes[label]
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image), np.asarray(dataset.open(ref, "photo")))
    files[-1].unlink()  # as if interrupted before the last file
    again = invoke(capsys, "data", "export", "--dataset", "synthetic", *SIZE, "--out", str(out))
    assert f"1 images written, {len(items) - 1} already there" in again.out
    train = ["--subset", "train", "--modality", "sketch", "--out", str(tmp_path / "s")]
    sketches = invoke(capsys, "data", "export", "--dataset", "synthetic", *SIZE, *train)
    assert f"{len(dataset.items('train', 'sketch'))} images written" in sketches.out


def test_an_unreadable_image_is_left_out_and_named(tmp_path, capsys):
    from .dataset_trees import folder_tree

    folder_tree(tmp_path / "data", "sketch", ["photo"], ["a", "b", "c", "d"], per_class=2)
    (tmp_path / "data" / "photo" / "d" / "p0-photo.jpg").write_bytes(b"not a jpeg")
    data = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--set", "unseen=c,d"]
    outcome = invoke(capsys, "data", "export", *data, "--out", str(tmp_path / "o"))
    assert outcome.code == 0, outcome.err
    assert "3 images written" in outcome.out
    assert outcome.err.strip().startswith("left out 1 unreadable image(s): ")
    assert "p0-photo" in outcome.err
