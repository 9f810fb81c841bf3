"""Property-based tests (hypothesis): whatever a user types or has on disk ends in a
result or in one clear line (a UserError), never in a traceback."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbirbench.config import build_config, split_overrides
from sbirbench.errors import UserError
from sbirbench.methods.pskd import PSKDConfig
from sbirbench.protocol.benchmarks import load_benchmarks

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
KEYS = st.sampled_from(
    [
        "lr",
        "epochs",
        "batch_size",
        "combine",
        "ila",
        "clip_grad",
        "warmup_epochs",
        "backbone",
        "nonsense",
        "eval_interpolation",
        "teacher_epochs",
        "accum_steps",
        "weight_decay_end",
    ]
)


def one_line(exc: BaseException) -> bool:
    return isinstance(exc, UserError) and "\n" not in str(exc) and bool(str(exc))


@SETTINGS
@given(st.lists(st.tuples(KEYS | TEXT, TEXT), max_size=4))
def test_set_overrides_build_a_config_or_fail_in_one_line(pairs):
    try:
        values = split_overrides([f"{k}={v}" for k, v in pairs])[""]
        config = build_config(PSKDConfig, values, what="method pskd")
    except Exception as exc:
        assert one_line(exc), repr(exc)
        return
    assert config.batch_size % config.accum_steps == 0 and config.lr > 0


@SETTINGS
@given(
    st.dictionaries(
        KEYS,
        st.one_of(
            st.integers(-5, 10**6),
            st.floats(allow_nan=True),
            st.booleans(),
            TEXT,
            st.lists(st.integers(), max_size=3),
        ),
        max_size=5,
    )
)
def test_preset_values_build_a_config_or_fail_in_one_line(table):
    try:
        build_config(PSKDConfig, table, what="method pskd")
    except Exception as exc:
        assert one_line(exc), repr(exc)


TOML_VALUE = st.one_of(
    st.integers(-3, 3),
    st.booleans(),
    TEXT.map(repr),
    st.lists(st.sampled_from(['"map@all"', '"prec@100"', '"recall@5"', "1"]), max_size=3).map(
        lambda xs: "[" + ", ".join(xs) + "]"
    ),
)
BENCH_KEYS = st.sampled_from(
    [
        "dataset",
        "split",
        "version",
        "metrics",
        "ap",
        "test_size",
        "published",
        "description",
        "unknown",
    ]
)


@SETTINGS
@given(st.dictionaries(BENCH_KEYS, TOML_VALUE, max_size=6), st.booleans())
def test_benchmark_files_load_or_fail_in_one_line(table, as_suite):
    body = "\n".join(f"{k} = {v}" for k, v in table.items())
    text = f"[{'suites' if as_suite else 'benchmarks'}.x]\n{body}\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "benchmarks.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_benchmarks(path)
        except Exception as exc:
            assert one_line(exc), repr(exc)


NAME = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="/\x00"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", ".."))
IMAGE = b"\x89PNG\r\n\x1a\n"  # a header only: unreadable as an image


def write_tree(root: Path, tree: dict, outside: Path) -> None:
    """A sketch/photo tree with empty classes, odd names, broken files, links out."""
    for modality, classes in tree.items():
        for name, (files, link_out) in classes.items():
            folder = root / modality / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(files):
                (folder / f"{i}.png").write_bytes(IMAGE)
            if link_out:
                os.symlink(outside, folder / "escape.png")


TREES = st.dictionaries(
    st.sampled_from(["sketch", "photo", "sketches", "other"]),
    st.dictionaries(NAME, st.tuples(st.integers(0, 2), st.booleans()), max_size=4),
    max_size=3,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TREES, st.lists(NAME, max_size=3))
def test_random_folder_trees_give_a_data_set_or_one_line(tmp_path, tree, unseen):
    from sbirbench.pipeline.resolve import build_dataset

    root = Path(tempfile.mkdtemp(dir=tmp_path))
    outside = tmp_path / "secret.png"
    outside.write_bytes(IMAGE)
    try:
        write_tree(root, tree, outside)
    except OSError:  # a name this file system refuses: nothing to test
        shutil.rmtree(root, ignore_errors=True)
        return
    overrides = [f"dataset.unseen={','.join(unseen)}"] if unseen else []
    overrides.append("dataset.index_cache=false")
    try:
        dataset = build_dataset("folder", None, str(root), overrides)
    except Exception as exc:
        assert one_line(exc), repr(exc)
        return
    for subset in ("train", "test"):
        for modality in ("sketch", "photo"):
            for ref, _ in dataset.items(subset, modality):  # nothing outside the data root
                assert os.path.realpath(ref).startswith(os.path.realpath(root)), ref


@pytest.mark.parametrize("line", ["../outside.png 0", "/etc/passwd 0"])
def test_file_lists_cannot_point_outside_the_root(tmp_path, line):
    from sbirbench.datasets.layouts import index_file_lists

    folder = tmp_path / "zeroshot"
    folder.mkdir()
    (folder / "cname_cid_zero.txt").write_text("cat 0\n")
    (folder / "cname_cid.txt").write_text("dog 0\n")
    (folder / "sketch_filelist_zero.txt").write_text(line + "\n")
    with pytest.raises(UserError, match="points outside the data root"):
        index_file_lists(folder)


def test_file_lists_under_a_relative_root_are_read(tmp_path, monkeypatch):
    """``--data-root .``: the root is "." and the joined paths have no "./" prefix."""
    from sbirbench.datasets.layouts import index_file_lists

    folder = tmp_path / "zeroshot"
    folder.mkdir()
    (folder / "cname_cid_zero.txt").write_text("cat 0\n")
    (folder / "sketch_filelist_zero.txt").write_text("sketch/cat/a.png 0\n")
    monkeypatch.chdir(tmp_path)  # the data root is "." and the split folder "zeroshot"
    index = index_file_lists(Path("zeroshot"))
    assert index.files["test/sketch"] == {"cat": [os.path.join("sketch", "cat", "a.png")]}
