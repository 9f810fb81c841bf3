"""``sbirbench new-method`` writes a package that installs with pip and passes its test."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .cli_helpers import invoke, pip_install_offline


@pytest.mark.slow
def test_new_method_installs_and_passes_its_own_test(tmp_path, capsys):
    outcome = invoke(capsys, "new-method", "my-probe", "--dir", str(tmp_path))
    assert outcome.code == 0, outcome.err
    root = tmp_path / "sbirbench-my-probe"
    assert (root / "sbirbench_my_probe" / "method.py").is_file()
    site = tmp_path / "site"
    env = pip_install_offline(root, site)
    listed = subprocess.run(
        [sys.executable, "-m", "sbirbench", "list", "methods"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "my-probe" in listed.stdout
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_new_method_refuses_bad_names_and_existing_folders(tmp_path, capsys):
    bad = invoke(capsys, "new-method", "My Method", "--dir", str(tmp_path))
    assert bad.code == 2 and "must start with a letter" in bad.err
    assert invoke(capsys, "new-method", "twice", "--dir", str(tmp_path)).code == 0
    again = invoke(capsys, "new-method", "twice", "--dir", str(tmp_path))
    assert again.code == 2 and "already exists" in again.err
    taken = invoke(capsys, "new-method", "pskd", "--dir", str(tmp_path))
    assert taken.code == 2 and "already registered" in taken.err
    assert not (tmp_path / "sbirbench-pskd").exists()
