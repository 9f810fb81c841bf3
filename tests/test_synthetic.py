from __future__ import annotations

import numpy as np
import pytest

from sbirbench.datasets import synthetic
from sbirbench.datasets.synthetic import SyntheticConfig, SyntheticDataset, generate
from sbirbench.datasets.synthetic_render import BODIES, CLASSES, PARTS, UNSEEN
from sbirbench.errors import UserError

SMALL = SyntheticConfig(sketches_per_class=3, photos_per_class=2, image_size=32)


def test_generation_is_deterministic_in_the_seed():
    a, b = generate(SMALL), generate(SMALL)
    c = generate(SyntheticConfig(seed=1, sketches_per_class=3, photos_per_class=2, image_size=32))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["photo"], c["photo"])
    assert not np.array_equal(a["sketch"], c["sketch"])


def test_default_set_has_the_classes_and_counts_it_claims():
    ds = SyntheticDataset(SyntheticConfig())
    assert len(ds.seen_classes) == 15 and ds.unseen_classes == list(UNSEEN)
    assert set(ds.seen_classes).isdisjoint(ds.unseen_classes)
    assert set(ds.seen_classes) | set(ds.unseen_classes) == set(CLASSES)
    for subset, classes in (("train", 15), ("test", 5)):
        for modality in ("sketch", "photo"):
            items = ds.items(subset, modality)
            assert len(items) == classes * 60
            labels = [label for _, label in items]
            assert sorted(set(labels)) == list(range(classes))
            assert np.bincount(labels).tolist() == [60] * classes
    image = ds.open(ds.items("test", "photo")[0][0], "photo")
    assert image.mode == "RGB" and image.size == (64, 64)


def test_unseen_classes_are_compositions_of_seen_parts():
    seen = [c for c in CLASSES if c not in UNSEEN]
    for name in UNSEEN:
        body, part = name.split("_")
        assert any(c.startswith(body + "_") for c in seen)
        assert any(c.endswith("_" + part) for c in seen)
    assert len(CLASSES) == len(BODIES) * len(PARTS)


def test_sketches_are_dark_strokes_on_white_and_photos_are_colourful():
    arrays = generate(SMALL)
    sketches, photos = arrays["sketch"].astype(float), arrays["photo"].astype(float)
    assert np.median(sketches) == 255  # mostly white paper
    assert (sketches < 128).mean() > 0.02  # with strokes
    assert photos.std(axis=-1).mean() > 10  # colour, not grey
    assert (photos > 250).mean() < 0.05  # cluttered background, not white


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    config = SyntheticConfig(
        data_root=str(tmp_path), sketches_per_class=2, photos_per_class=2, image_size=16
    )
    folder, arrays = synthetic.cached_arrays(config)
    assert folder.parent == tmp_path and (folder / "params.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary leftovers

    def fail(_config):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(synthetic, "generate", fail)
    again, cached = synthetic.cached_arrays(config)
    assert again == folder
    np.testing.assert_array_equal(cached["photo"], arrays["photo"])


def test_unknown_split_is_a_user_error():
    with pytest.raises(UserError, match="only the split 'default'"):
        SyntheticDataset(SyntheticConfig(split="zeroshot"))
