"""Plugin loading: entry points, allow-list, broken plugins, hooks from test modules."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import sbirbench
from sbirbench.plugins import manager as plugins_module
from sbirbench.testing import ToyDataset, registered_plugin

from .cli_helpers import invoke, pip_install_offline


class ToyPlugin:
    @sbirbench.hookimpl
    def register_datasets(self, register):
        register("toy", ToyDataset, description="A toy data set\nsecond line ignored")


def test_builtin_plugins_come_from_entry_points(fresh_plugins):
    loaded = fresh_plugins.get_plugins()
    assert loaded.infos["datasets"].source == "entry point"
    assert loaded.infos["datasets"].distribution == "sbirbench"
    assert "synthetic" in loaded.datasets
    assert loaded.datasets.get("synthetic").origin == "datasets"
    assert "register_datasets" in loaded.hooks_of("datasets")


def test_plugin_registered_from_a_test_module(fresh_plugins):
    with registered_plugin(ToyPlugin(), "toy-plugin") as loaded:
        entry = loaded.datasets.get("toy")
        assert entry.origin == "toy-plugin"
        assert entry.description == "A toy data set"
        assert entry.load() is ToyDataset
    assert "toy" not in fresh_plugins.get_plugins().datasets


def test_a_plugin_taking_a_builtin_name_is_skipped_naming_both(fresh_plugins, capsys):
    class Clash:
        @sbirbench.hookimpl
        def register_datasets(self, register):
            register("toy", ToyDataset)
            register("synthetic", "elsewhere:Synthetic")

    with registered_plugin(Clash(), "clash") as loaded:
        assert loaded.datasets.get("synthetic").origin == "datasets"  # the built-in stays
        assert "toy" not in loaded.datasets  # all of the plugin's entries, or none
    err = capsys.readouterr().err
    assert "dataset 'synthetic' is registered twice: by plugin 'datasets'" in err
    assert "plugin 'clash' was skipped" in err


def test_the_builtins_register_first_whatever_the_hook_order(fresh_plugins, capsys):
    """pluggy lists a ``trylast`` implementation first; the built-ins still win a name."""

    class Early:
        @sbirbench.hookimpl(trylast=True)
        def register_methods(self, register):
            register("pskd", "elsewhere:NotPSKD")

    with registered_plugin(Early(), "early") as loaded:
        hookimpls = loaded.manager.hook.register_methods.get_hookimpls()
        assert hookimpls[0].plugin_name == "early"  # the order the loop would otherwise take
        assert loaded.methods.get("pskd").origin == "methods"
    assert "plugin 'early' was skipped" in capsys.readouterr().err


def test_a_plugin_whose_hook_raises_leaves_the_others_working(fresh_plugins, capsys):
    class Raises:
        @sbirbench.hookimpl
        def register_methods(self, register):
            raise RuntimeError("no GPU driver")

    with registered_plugin(Raises(), "raiser") as loaded:
        assert "pskd" in loaded.methods and "synthetic" in loaded.datasets
    err = capsys.readouterr().err
    assert "plugin 'raiser' failed in register_methods and was skipped" in err
    assert "RuntimeError: no GPU driver" in err


def _fake_entry_points(*eps: EntryPoint):
    real = plugins_module.entry_points

    def fake(group: str):
        return list(real(group=group)) + list(eps)

    return fake


def test_broken_plugin_is_skipped_with_a_warning(monkeypatch):
    broken = EntryPoint("broken", "no_such_module_xyz", "sbirbench")
    monkeypatch.setattr(plugins_module, "entry_points", _fake_entry_points(broken))
    loaded = plugins_module.load_plugins()
    assert "broken" not in loaded.infos
    assert any("'broken'" in w and "ModuleNotFoundError" in w for w in loaded.warnings)
    assert "synthetic" in loaded.datasets  # the others still load
    with pytest.raises(ModuleNotFoundError):
        plugins_module.load_plugins(debug=True)


def test_misspelt_hook_is_rejected_by_check_pending(monkeypatch, tmp_path):
    (tmp_path / "typo_plugin_mod.py").write_text(
        "import sbirbench\n@sbirbench.hookimpl\ndef register_method(register):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    typo = EntryPoint("typo", "typo_plugin_mod", "sbirbench")
    monkeypatch.setattr(plugins_module, "entry_points", _fake_entry_points(typo))
    loaded = plugins_module.load_plugins()
    assert "typo" not in loaded.infos
    assert any("'typo' was skipped" in w and "register_method" in w for w in loaded.warnings)


def test_allow_list_limits_entry_points(monkeypatch):
    monkeypatch.setenv("SBIRBENCH_LOAD_PLUGINS", "")
    assert plugins_module.load_plugins().infos == {}
    monkeypatch.setenv("SBIRBENCH_LOAD_PLUGINS", "datasets, nothing-called-this")
    loaded = plugins_module.load_plugins()
    assert set(loaded.infos) == {"datasets"}
    assert any("'nothing-called-this'" in w for w in loaded.warnings)
    monkeypatch.setenv("SBIRBENCH_LOAD_PLUGINS", "sbirbench")  # a distribution name
    assert "datasets" in plugins_module.load_plugins().infos


PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "sbirbench-hello"
version = "1.2.3"

[project.entry-points.sbirbench]
hello = "sbirbench_hello"
"""

PLUGIN_MODULE = '''
import click
import sbirbench


@sbirbench.hookimpl
def register_methods(register):
    register("hello", "sbirbench_hello.method:Hello", description="Says hello")


@sbirbench.hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Print a greeting."""
        click.echo("hello from a plugin")
'''


@pytest.mark.slow
def test_pip_installed_plugin_shows_up(tmp_path):
    """A real distribution, built and pip-installed: its method and command appear."""
    src = tmp_path / "src"
    (src / "sbirbench_hello").mkdir(parents=True)
    (src / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (src / "sbirbench_hello" / "__init__.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    target = tmp_path / "site"
    env = pip_install_offline(src, target)
    cli = [sys.executable, "-m", "sbirbench"]
    listing = subprocess.run(
        [*cli, "list", "methods", "--json"], env=env, check=True, capture_output=True, text=True
    )
    methods = {m["name"]: m for m in json.loads(listing.stdout)["methods"]}
    assert methods["hello"]["plugin"] == "hello"
    assert methods["hello"]["description"] == "Says hello"
    shown = subprocess.run(
        [*cli, "plugins", "--json"], env=env, check=True, capture_output=True, text=True
    )
    info = {p["name"]: p for p in json.loads(shown.stdout)}["hello"]
    assert info["distribution"] == "sbirbench-hello" and info["version"] == "1.2.3"
    assert info["hooks"] == ["register_commands", "register_methods"]
    greeted = subprocess.run([*cli, "hello"], env=env, check=True, capture_output=True, text=True)
    assert greeted.stdout.strip() == "hello from a plugin"
    assert Path(target).is_dir()


class NotAMethod:
    """Has the look of a method but is not a sbirbench.interfaces.Method."""

    Config = None


def test_a_plugin_whose_command_hook_raises_leaves_the_cli_working(fresh_plugins, capsys):
    from sbirbench.cli import cli

    class BadCommands:
        @sbirbench.hookimpl
        def register_commands(self, cli):
            raise ImportError("optional extra missing")

    cli._plugin_commands_added = False
    try:
        with registered_plugin(BadCommands(), "bad-commands"):
            outcome = invoke(capsys, "--help")
    finally:
        cli._plugin_commands_added = False
    assert outcome.code == 0 and "leaderboard" in outcome.out
    assert "plugin 'bad-commands' failed in register_commands and was skipped" in outcome.err


def test_a_registration_that_breaks_the_contract_is_skipped_naming_the_plugin(
    fresh_plugins, capsys
):
    from sbirbench.interfaces import Method

    class Incomplete(Method):  # no embed, no model, no stages
        pass

    class Bad:
        @sbirbench.hookimpl
        def register_methods(self, register):
            register("incomplete", Incomplete)

    with registered_plugin(Bad(), "bad-plugin") as loaded:
        assert "incomplete" not in loaded.methods and "pskd" in loaded.methods
    line = capsys.readouterr().err.strip()
    assert "plugin 'bad-plugin' registered incomplete" in line and "\n" not in line
    assert "does not implement embed, model, stages" in line
    assert line.endswith("plugin 'bad-plugin' was skipped")

    class Lazy:  # a "module:attr" target is checked when it is first loaded
        @sbirbench.hookimpl
        def register_methods(self, register):
            register("lazy", "tests.test_plugins:NotAMethod")

    with registered_plugin(Lazy(), "lazy-plugin") as loaded:
        entry = loaded.methods.get("lazy")
        with pytest.raises(
            sbirbench.errors.UserError,
            match="plugin 'lazy-plugin' registered lazy .*is not a subclass of "
            "sbirbench.interfaces.Method",
        ):
            entry.load()


def test_a_method_without_presets_file_warns_naming_the_file(fresh_plugins, capsys):
    from sbirbench.pipeline import presets

    from .test_engine import NanMethod

    presets._warned.clear()
    assert presets.load_presets(NanMethod, "nan-probe", "probe-plugin") == {}
    err = capsys.readouterr().err
    assert "method nan-probe (plugin probe-plugin) has no presets file" in err
    assert str(Path(__file__).with_name("test_engine.toml")) in err
