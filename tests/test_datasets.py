"""Data sets on disk: layouts, splits, names, images, errors, sketchy-mini."""

from __future__ import annotations

import json

import pytest

from sbirbench.datasets.folder import Folder, FolderConfig
from sbirbench.datasets.images import open_rgb
from sbirbench.datasets.names import normalize, shipped_list
from sbirbench.datasets.quickdraw import QuickDraw
from sbirbench.datasets.sketchy import Sketchy, SketchyConfig
from sbirbench.datasets.tuberlin import TUBerlin
from sbirbench.errors import UserError

from .cli_helpers import invoke
from .conftest import SKETCHY_MINI
from .dataset_trees import classes_for, file_list_tree, folder_tree, image


def test_shipped_lists_and_the_normaliser():
    counts = {
        "sketchy_classes": 125,
        "sketchy_zeroshot": 21,
        "sketchy_random": 25,
        "sketchy_outliers": 12,
        "tuberlin_classes": 250,
        "tuberlin_zeroshot": 30,
        "quickdraw_classes": 110,
        "quickdraw_zeroshot": 30,
    }
    for name, count in counts.items():
        assert len(shipped_list(f"{name}.txt")) == count, name
    for dataset, splits in (
        ("sketchy", ("zeroshot", "random")),
        ("tuberlin", ("zeroshot",)),
        ("quickdraw", ("zeroshot",)),
    ):
        every = [normalize(c) for c in shipped_list(f"{dataset}_classes.txt")]
        assert len(set(every)) == len(every), dataset  # no two classes collapse into one
        for split in splits:
            assert {normalize(c) for c in shipped_list(f"{dataset}_{split}.txt")} <= set(every)
    for variants in (
        ("hot-air_balloon", "hot air balloon", "hot_air_balloon", "Hot-Air Balloon"),
        ("car_(sedan)", "car (sedan)"),
        ("jack-o-lantern", "jack_o_lantern"),
        ("t-shirt", "t shirt", "T_Shirt"),
        ("frying-pan", "frying pan"),
        ("palm tree", "palm_tree"),
        ("bottle opener", "bottle_opener"),
    ):
        assert len({normalize(v) for v in variants}) == 1, variants
    assert normalize("wine_bottle") != normalize("wine_glass")


def check(dataset, seen_on_disk, unseen, per_class=1, photos_per_class=1):
    assert len(dataset.unseen_classes) == len(unseen)
    assert [normalize(c) for c in dataset.unseen_classes] == [normalize(c) for c in unseen]
    assert set(dataset.seen_classes).isdisjoint(dataset.unseen_classes)
    test_sketch = dataset.items("test", "sketch")
    assert len(test_sketch) == len(unseen) * per_class
    assert sorted({label for _, label in test_sketch}) == list(range(len(unseen)))
    assert len(dataset.items("test", "photo")) == len(unseen) * photos_per_class
    train = dataset.items("train", "sketch")
    assert len(train) == len(seen_on_disk) * per_class
    for ref, label in train:
        assert normalize(dataset.seen_classes[label]) in {normalize(c) for c in seen_on_disk}
        assert normalize(dataset.seen_classes[label]) in normalize(str(ref)).replace("/", "_")


def test_sketchy_database_layout_with_extended_photos(tmp_path):
    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(
        tmp_path,
        "sketch/tx_000000000000",
        ["photo/tx_000000000000", "extended_photo"],
        seen + unseen,
    )
    dataset = Sketchy(SketchyConfig(data_root=str(tmp_path), split="zeroshot"))
    assert dataset.describe()["layout"] == "sketchy-database"
    check(dataset, seen, unseen, photos_per_class=2)  # originals + Extended photos
    assert len(dataset.seen_classes) == 104 and len(dataset.describe()["missing_classes"]) == 101


def test_sketchy_sem_pcyc_names_under_sbirbench_data(tmp_path, monkeypatch):
    seen, unseen = classes_for("sketchy", "random")
    folder_tree(
        tmp_path / "Sketchy",
        "sketch/tx_000000000000",
        ["photo/tx_000000000000"],
        seen + unseen,
        rename=lambda c: c.replace("-", "_"),
    )  # SEM-PCYC spelling
    monkeypatch.setenv("SBIRBENCH_DATA", str(tmp_path))
    dataset = Sketchy(SketchyConfig(split="random"))
    assert dataset.describe()["root"] == str(tmp_path / "Sketchy")
    check(dataset, seen, unseen)


def test_sketchy_outliers_are_dropped_from_sketches(tmp_path):
    seen, unseen = classes_for("sketchy", "random")
    folder_tree(tmp_path, "sketch/tx_000000000000", ["photo/tx_000000000000"], seen + unseen)
    image(tmp_path / "sketch/tx_000000000000/airplane/n02691156_359-5.png")  # an outlier
    kept = Sketchy(SketchyConfig(data_root=str(tmp_path), split="random", index_cache=False))
    assert kept.describe()["excluded"] == 1
    assert len(kept.items("test", "sketch")) == 25
    every = Sketchy(
        SketchyConfig(
            data_root=str(tmp_path), split="random", index_cache=False, exclude_outliers=False
        )
    )
    assert len(every.items("test", "sketch")) == 26


@pytest.mark.parametrize(("split", "folder"), [("zeroshot", "zeroshot2"), ("random", "zeroshot1")])
def test_sketchy_sake_file_lists_pick_the_split_folder(tmp_path, split, folder):
    for name, sp in (("zeroshot2", "zeroshot"), ("zeroshot1", "random")):
        seen, unseen = classes_for("sketchy", sp)
        file_list_tree(
            tmp_path / "Sketchy",
            name,
            seen,
            unseen,
            "sketch_tx_000000000000_ready_filelist_{subset}.txt",
            "all_photo_filelist_{subset}.txt",
        )
    dataset = Sketchy(SketchyConfig(data_root=str(tmp_path), split=split))
    facts = dataset.describe()
    assert facts["layout"] == "file-lists" and folder in facts["layout_description"]
    seen, unseen = classes_for("sketchy", split)
    check(dataset, seen, unseen)
    assert all(" " in str(ref) for ref, _ in dataset.items("test", "photo"))


def test_tuberlin_sem_pcyc_and_tvt_layouts(tmp_path):
    seen, unseen = classes_for("tuberlin", "zeroshot")
    sem = tmp_path / "sem"
    folder_tree(
        sem / "TU-Berlin",
        "sketches",
        ["images"],
        seen + unseen,
        rename=lambda c: c.replace(" ", "_").replace("-", "_"),
    )
    dataset = TUBerlin(TUBerlin.Config(data_root=str(sem), split="zeroshot"))
    assert dataset.describe()["layout"] == "sketches-images"
    check(dataset, seen, unseen)
    assert "hot air balloon" in dataset.unseen_classes  # the data set's own spelling
    tvt = tmp_path / "tvt"
    folder_tree(tvt / "tuberlin", "sketch", ["photo"], seen + unseen)
    dataset = TUBerlin(TUBerlin.Config(data_root=str(tvt), split="zeroshot"))
    assert dataset.describe()["layout"] == "tvt"
    check(dataset, seen, unseen)


def test_tuberlin_file_lists(tmp_path):
    seen, unseen = classes_for("tuberlin", "zeroshot")
    file_list_tree(
        tmp_path / "TUBerlin",
        "zeroshot",
        seen,
        unseen,
        "png_ready_filelist_{subset}.txt",
        "ImageResized_ready_filelist_{subset}.txt",
    )
    dataset = TUBerlin(TUBerlin.Config(data_root=str(tmp_path), split="zeroshot"))
    assert dataset.describe()["layout"] == "file-lists"
    check(dataset, seen, unseen)


def test_quickdraw_extended_and_zse_lists(tmp_path):
    seen, unseen = classes_for("quickdraw", "zeroshot")
    folder_tree(tmp_path / "ext" / "QuickDraw", "sketches", ["images"], seen + unseen)
    dataset = QuickDraw(QuickDraw.Config(data_root=str(tmp_path / "ext")))
    assert dataset.describe()["layout"] == "sketches-images"
    check(dataset, seen, unseen)
    file_list_tree(
        tmp_path / "zse" / "QuickDraw",
        "zeroshot",
        seen,
        unseen,
        "sketch_{subset}.txt",
        "all_photo_{subset}.txt",
        with_train=False,
    )  # ZSE ships only zero lists
    dataset = QuickDraw(QuickDraw.Config(data_root=str(tmp_path / "zse")))
    assert len(dataset.items("test", "sketch")) == 30 and dataset.items("train", "sketch") == []


def test_folder_data_set(tmp_path):
    folder_tree(
        tmp_path, "sketch", ["photo"], ["apple", "pear", "plum", "fig", "kiwi"], per_class=2
    )
    given = Folder(FolderConfig(data_root=str(tmp_path), unseen="fig, kiwi"))
    assert given.unseen_classes == ["fig", "kiwi"] and len(given.items("train", "photo")) == 6
    (tmp_path / "unseen.txt").write_text("# held out\npear\n")
    from_file = Folder(FolderConfig(data_root=str(tmp_path), unseen=str(tmp_path / "unseen.txt")))
    assert from_file.unseen_classes == ["pear"]
    drawn = Folder(FolderConfig(data_root=str(tmp_path), unseen_count=2, seed=3))
    again = Folder(FolderConfig(data_root=str(tmp_path), unseen_count=2, seed=3))
    assert drawn.unseen_classes == again.unseen_classes and len(drawn.unseen_classes) == 2
    with pytest.raises(UserError, match="give the unseen classes"):
        Folder(FolderConfig(data_root=str(tmp_path)))
    with pytest.raises(UserError, match="unseen class 'mango' is not a folder"):
        Folder(FolderConfig(data_root=str(tmp_path), unseen="mango"))
    with pytest.raises(UserError, match="unseen_count must be between 1 and 4"):
        Folder(FolderConfig(data_root=str(tmp_path), unseen_count=5))


def test_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.delenv("SBIRBENCH_DATA", raising=False)
    with pytest.raises(UserError, match="no data root for sketchy: pass --data-root"):
        Sketchy(SketchyConfig(split="zeroshot"))
    with pytest.raises(UserError, match="data root .*nowhere does not exist"):
        Sketchy(SketchyConfig(data_root=str(tmp_path / "nowhere"), split="zeroshot"))
    (tmp_path / "wrong" / "stuff").mkdir(parents=True)
    with pytest.raises(UserError) as info:
        Sketchy(SketchyConfig(data_root=str(tmp_path / "wrong"), split="zeroshot"))
    message = str(info.value)
    assert "no Sketchy layout found" in message and "tried sketchy-database in" in message
    assert "sketch/tx_000000000000/<class>" in message and "cname_cid.txt" in message
    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(tmp_path / "half", "sketch/tx_000000000000", [], seen + unseen)
    with pytest.raises(UserError, match="found sketches at .* but no .*photo/tx_000000000000"):
        Sketchy(SketchyConfig(data_root=str(tmp_path / "half"), split="zeroshot"))
    folder_tree(
        tmp_path / "gap", "sketch/tx_000000000000", ["photo/tx_000000000000"], seen + unseen[1:]
    )
    with pytest.raises(UserError, match="'bat' of split 'zeroshot' has no sketches .*no class"):
        Sketchy(SketchyConfig(data_root=str(tmp_path / "gap"), split="zeroshot"))
    (tmp_path / "gap" / "sketch/tx_000000000000/bat").mkdir()
    (tmp_path / "gap" / "photo/tx_000000000000/bat").mkdir()
    with pytest.raises(UserError, match="'bat' of split 'zeroshot' has no sketches .*no images"):
        Sketchy(SketchyConfig(data_root=str(tmp_path / "gap"), split="zeroshot", index_cache=False))


def test_image_modes_become_rgb(tmp_path):
    for mode in ("L", "CMYK", "P", "RGB"):
        path = image(tmp_path / f"x_{mode}.{'jpg' if mode == 'CMYK' else 'png'}", mode)
        assert open_rgb(str(path)).mode == "RGB", mode
    transparent = open_rgb(str(image(tmp_path / "alpha.png", "RGBA")))
    assert transparent.getpixel((3, 3)) == (255, 255, 255)  # background white, not black
    assert transparent.getpixel((0, 0)) == (0, 0, 0)


def corrupt_tree(tmp_path):
    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(
        tmp_path, "sketch/tx_000000000000", ["photo/tx_000000000000"], seen + unseen, per_class=2
    )
    good = (tmp_path / "photo/tx_000000000000/bat/p0-photo_tx_000000000000.jpg").read_bytes()
    (tmp_path / "photo/tx_000000000000/cow/p0-photo_tx_000000000000.jpg").write_bytes(good[:60])
    (tmp_path / "sketch/tx_000000000000/saw/s0.png").write_bytes(b"")
    return tmp_path


def test_corrupt_images_are_reported_and_skipped(tmp_path, capsys):
    root = corrupt_tree(tmp_path)
    outcome = invoke(
        capsys, "data", "check", "--dataset", "sketchy", "--data-root", str(root), "--json"
    )
    report = json.loads(outcome.out)
    assert outcome.code == 0 and report["usable"]
    assert sorted(p.split("/")[-2] for p in report["unreadable"]) == ["cow", "saw"]
    from sbirbench.data.items import ImageItems
    from sbirbench.data.transforms import eval_transform
    from sbirbench.interfaces import InputSpec

    dataset = Sketchy(SketchyConfig(data_root=str(root), split="zeroshot"))
    items = ImageItems(
        dataset,
        dataset.items("test", "photo"),
        "photo",
        eval_transform(InputSpec(8, (0.5,) * 3, (0.5,) * 3)),
        replace=False,
    )
    bad = [items[i].unreadable for i in range(len(items)) if items[i].unreadable]
    assert len(bad) == 1 and "cow" in bad[0][0]
    strict = Sketchy(SketchyConfig(data_root=str(root), split="zeroshot", on_corrupt="error"))
    strict_items = ImageItems(
        strict,
        strict.items("test", "photo"),
        "photo",
        eval_transform(InputSpec(8, (0.5,) * 3, (0.5,) * 3)),
        replace=False,
    )
    with pytest.raises(UserError, match="unreadable image .*cow"):
        [strict_items[i] for i in range(len(strict_items))]


def test_data_check_fails_when_an_unseen_class_has_no_readable_photo(tmp_path, capsys):
    root = corrupt_tree(tmp_path)
    (root / "photo/tx_000000000000/cow/p1-photo_tx_000000000000.jpg").write_bytes(b"junk")
    outcome = invoke(capsys, "data", "check", "--dataset", "sketchy", "--data-root", str(root))
    assert outcome.code == 1
    assert "unseen classes without readable photos: cow" in outcome.out


def test_index_cache_is_used_and_refreshed(tmp_path):
    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(tmp_path, "sketch/tx_000000000000", ["photo/tx_000000000000"], seen + unseen)
    first = Sketchy(SketchyConfig(data_root=str(tmp_path), split="zeroshot"))
    second = Sketchy(SketchyConfig(data_root=str(tmp_path), split="zeroshot"))
    assert not first.index.cached and second.index.cached
    image(tmp_path / "sketch/tx_000000000000/bat/extra.png")
    third = Sketchy(SketchyConfig(data_root=str(tmp_path), split="zeroshot"))
    assert not third.index.cached and len(third.items("test", "sketch")) == 22


def test_data_show_writes_a_contact_sheet(tmp_path, capsys):
    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(
        tmp_path / "d",
        "sketch/tx_000000000000",
        ["photo/tx_000000000000"],
        seen + unseen,
        per_class=2,
    )
    out = tmp_path / "sheet.png"
    outcome = invoke(
        capsys,
        "data",
        "show",
        "--dataset",
        "sketchy",
        "--data-root",
        str(tmp_path / "d"),
        "--classes",
        "bat,cow,saw",
        "--per-class",
        "2",
        "--size",
        "32",
        "--out",
        str(out),
    )
    assert outcome.code == 0
    from PIL import Image

    sheet = Image.open(out)
    assert sheet.size == (160 + 4 * 36 + 4, 3 * 36 + 4)
    missing = invoke(
        capsys,
        "data",
        "show",
        "--dataset",
        "sketchy",
        "--data-root",
        str(tmp_path / "d"),
        "--classes",
        "unicorn",
        "--out",
        str(out),
    )
    assert missing.code == 2 and "not a test class of sketchy: unicorn" in missing.err


@pytest.mark.skipif(not SKETCHY_MINI.is_dir(), reason="../shared/data/sketchy-mini is absent")
def test_sketchy_mini(capsys):
    zeroshot = Sketchy(SketchyConfig(data_root=str(SKETCHY_MINI), split="zeroshot"))
    assert (len(zeroshot.seen_classes), len(zeroshot.unseen_classes)) == (104, 21)
    assert len(zeroshot.items("test", "sketch")) == 525
    assert len(zeroshot.items("test", "photo")) == 525
    assert zeroshot.describe()["layout"] == "sketchy-database"
    random_split = Sketchy(SketchyConfig(data_root=str(SKETCHY_MINI), split="random"))
    assert (len(random_split.seen_classes), len(random_split.unseen_classes)) == (100, 25)
    outcome = invoke(
        capsys,
        "data",
        "check",
        "--dataset",
        "sketchy",
        "--data-root",
        str(SKETCHY_MINI),
        "--quick",
        "--json",
    )
    report = json.loads(outcome.out)
    assert outcome.code == 0 and report["counts"]["test"] == {"sketch": 525, "photo": 525}
    assert report["missing_classes"] == [] and report["seen"] == 104


def test_pskd_sketchy_layout(tmp_path):
    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(tmp_path, "sketch", ["photo/tx_000000000000"], seen + unseen)
    dataset = Sketchy(SketchyConfig(data_root=str(tmp_path), split="zeroshot"))
    assert dataset.describe()["layout"] == "pskd-sketchy"
    check(dataset, seen, unseen)


def test_two_lists_of_one_subset_do_not_duplicate_items(tmp_path):
    seen, unseen = classes_for("tuberlin", "zeroshot")
    file_list_tree(
        tmp_path / "TUBerlin",
        "zeroshot",
        seen,
        unseen,
        "png_ready_filelist_{subset}.txt",
        "ImageResized_ready_filelist_{subset}.txt",
    )
    split = tmp_path / "TUBerlin" / "zeroshot"
    copy = (split / "ImageResized_ready_filelist_zero.txt").read_text()
    (split / "all_photo_filelist_zero.txt").write_text(copy)
    dataset = TUBerlin(TUBerlin.Config(data_root=str(tmp_path), split="zeroshot"))
    assert len(dataset.items("test", "photo")) == 30


def test_data_fingerprint_follows_content_not_location(tmp_path):
    import shutil

    from sbirbench.pipeline.bind import data_fingerprint

    seen, unseen = classes_for("sketchy", "zeroshot")
    folder_tree(tmp_path / "a", "sketch/tx_000000000000", ["photo/tx_000000000000"], seen + unseen)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    config = dict(split="zeroshot", index_cache=False)
    first = data_fingerprint(Sketchy(SketchyConfig(data_root=str(tmp_path / "a"), **config)))
    moved = data_fingerprint(Sketchy(SketchyConfig(data_root=str(tmp_path / "b"), **config)))
    assert first == moved
    image(tmp_path / "b/photo/tx_000000000000/bat/extra.jpg")
    changed = data_fingerprint(Sketchy(SketchyConfig(data_root=str(tmp_path / "b"), **config)))
    assert changed != first
