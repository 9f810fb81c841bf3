"""Search with a trained run: an index of a photo folder that rebuilds only what changed,
exact top-k search with a sketch, the grid, and one-line errors."""

from __future__ import annotations

import json

import numpy as np

from sbirbench.datasets.synthetic import SyntheticDataset as Synthetic

from .cli_helpers import SMALL, invoke, only_run


def photo_folder(tmp_path, count: int = 12):
    """Test photos of the embedded data set as files, two class folders deep."""
    dataset = Synthetic(Synthetic.Config(sketches_per_class=8, photos_per_class=8))
    folder = tmp_path / "photos"
    items = dataset.items("test", "photo")[:count]
    for ref, label in items:
        path = folder / dataset.unseen_classes[label] / f"{ref}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.open(ref, "photo").save(path)
    sketch = tmp_path / "sketch.png"
    dataset.open(dataset.items("test", "sketch")[0][0], "sketch").save(sketch)
    return folder, sketch


def test_index_search_and_rebuild_only_what_changed(tmp_path, capsys):
    assert invoke(capsys, "run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL,
                  "--out", str(tmp_path / "runs")).code == 0  # fmt: skip
    run = only_run(tmp_path / "runs")
    folder, sketch = photo_folder(tmp_path)
    first = invoke(capsys, "index", "--run", str(run), "--photos", str(folder))
    assert first.code == 0, first.err
    assert "12 photos; 12 embedded, 0 reused" in first.out
    index = run / "index-photos.npz"
    with np.load(index) as data:
        features, paths = data["features"], list(data["paths"])
        meta = json.loads(str(data["meta"]))
    assert features.shape[0] == 12 and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    assert meta["inputs"] == json.loads((run / "result.json").read_text())["inputs"]
    # one photo changes, one is removed, one is added: only the changed and new are embedded
    changed, removed = folder / paths[0], folder / paths[1]
    changed.write_bytes(removed.read_bytes())
    removed.unlink()
    (folder / "extra.png").write_bytes(sketch.read_bytes())
    again = invoke(capsys, "index", "--run", str(run), "--photos", str(folder))
    assert "12 photos; 2 embedded, 10 reused" in again.out, again.out
    # a photo of the folder searched as the query finds itself first
    found = invoke(capsys, "search", "--index", str(index), str(folder / paths[2]), "-k", "5",
                   "--grid", str(tmp_path / "grid.png"))  # fmt: skip
    assert found.code == 0, found.err
    lines = found.out.strip().splitlines()
    assert len(lines) == 5 and lines[0].endswith(paths[2])
    scores = [float(line.split()[1]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert (tmp_path / "grid.png").stat().st_size > 0
    sketched = invoke(capsys, "search", "--index", str(index), str(sketch), "-k", "50")
    assert sketched.code == 0 and len(sketched.out.strip().splitlines()) == 12  # all there are


def test_search_errors_are_one_line(tmp_path, capsys):
    missing = invoke(capsys, "index", "--run", str(tmp_path / "nope"), "--photos", str(tmp_path))
    assert missing.code != 0 and missing.err.startswith("error: checkpoint not found")
    bad = tmp_path / "bad.npz"
    bad.write_text("not an index")
    unreadable = invoke(capsys, "search", "--index", str(bad), str(bad))
    assert unreadable.code != 0 and unreadable.err.startswith("error: cannot read index")
    assert "\n" not in unreadable.err.strip()


def test_the_faiss_graph_finds_what_exact_search_finds(tmp_path, capsys):
    import pytest

    pytest.importorskip("faiss", reason="needs the [search] extra: pip install -e '.[search]'")
    assert invoke(capsys, "run", "ce", "--dataset", "synthetic", "--epochs", "1", *SMALL,
                  "--out", str(tmp_path / "runs")).code == 0  # fmt: skip
    run = only_run(tmp_path / "runs")
    folder, sketch = photo_folder(tmp_path)
    built = invoke(capsys, "index", "--run", str(run), "--photos", str(folder), "--faiss")
    assert built.code == 0 and (run / "index-photos.faiss").is_file(), built.err
    index = str(run / "index-photos.npz")
    exact = invoke(capsys, "search", "--index", index, str(sketch), "-k", "5")
    approximate = invoke(capsys, "search", "--index", index, str(sketch), "-k", "5",
                         "--engine", "faiss")  # fmt: skip
    assert approximate.code == 0, approximate.err
    assert approximate.out == exact.out  # 12 photos: the graph search is exhaustive here


def test_faiss_search_without_the_graph_is_one_line(tmp_path, capsys):
    import pytest

    pytest.importorskip("faiss", reason="needs the [search] extra: pip install -e '.[search]'")
    from sbirbench.errors import UserError
    from sbirbench.search.searcher import load_faiss

    with pytest.raises(UserError, match="build it with sbirbench index ... --faiss"):
        load_faiss(tmp_path / "index.npz")
