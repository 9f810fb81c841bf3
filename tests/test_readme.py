"""The README's promises: two set-up commands, CI runs the test one, the example works."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def setup_commands() -> list[str]:
    section = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = setup_commands()
    assert len(commands) == 2
    main, test = commands
    assert main.startswith("pip install -e .") and "sbirbench" in main.split("&&")[1]
    assert "pytest" in test
    ci = (REPO / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def python_blocks() -> dict[str, str]:
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", README, re.S)
    return dict(blocks)


def test_plugin_example_from_the_readme_works(tmp_path, monkeypatch, fresh_plugins):
    files = python_blocks()
    assert files, "the README has no plugin example"
    for rel, code in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    package = Path(next(iter(files))).parts[0]
    module = __import__(package)
    from sbirbench.testing import registered_plugin

    with registered_plugin(module, package) as plugins:
        assert (
            len(
                next(
                    iter(
                        plugins.registry(k)
                        for k in ("dataset", "method")
                        if len(plugins.registry(k))
                    )
                )
            )
            >= 1
        )
        for kind in ("dataset", "method"):
            for entry in plugins.registry(kind):
                if entry.origin == package:
                    check_example_entry(kind, entry.load())
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)


def test_plugin_example_is_what_new_method_writes():
    from sbirbench.cli.new_method import render

    files = python_blocks()
    assert files["sbirbench_probe/method.py"] == render("method.py.tmpl", "probe")
    assert files["sbirbench_probe/__init__.py"] == render("plugin.py.tmpl", "probe")
    lines = sum(len(code.splitlines()) for code in files.values())
    assert lines < 50, lines


def check_example_entry(kind: str, target: type) -> None:
    if kind == "method":
        import json
        import tempfile
        from pathlib import Path

        from sbirbench.cli import main

        with tempfile.TemporaryDirectory() as out:
            main(
                [
                    "run",
                    "probe",
                    "--dataset",
                    "synthetic",
                    "--epochs",
                    "1",
                    "--batch-size",
                    "8",
                    "--set",
                    "dataset.sketches_per_class=8",
                    "--set",
                    "dataset.photos_per_class=8",
                    "--out",
                    out,
                    "--log-format",
                    "quiet",
                ]
            )
            (result,) = Path(out).rglob("result.json")
            assert json.loads(result.read_text())["method"] == "probe"
        return
    if kind == "dataset":
        dataset = target(target.Config())
        for subset, classes in (("train", dataset.seen_classes), ("test", dataset.unseen_classes)):
            for modality in ("sketch", "photo"):
                items = dataset.items(subset, modality)
                assert {label for _, label in items} == set(range(len(classes)))
                assert dataset.open(items[0][0], modality).mode == "RGB"
    else:
        pytest.fail(f"untested example kind {kind}")
