"""The CLI skeleton: help, version, list, plugins, errors; once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from sbirbench import __version__
from sbirbench.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version_and_help():
    assert invoke("--version").output.strip() == f"sbirbench, version {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    assert "list" in result.output and "plugins" in result.output


def test_list_shows_builtin_plugins():
    result = invoke("list", "datasets")
    assert result.exit_code == 0
    assert "synthetic" in result.output and "Embedded shapes" in result.output
    payload = json.loads(invoke("list", "--json").output)
    assert set(payload) == {"methods", "datasets", "backbones", "weights"}
    assert "efficientnet_lite0.tf_in1k_pip" in {e["name"] for e in payload["weights"]}
    assert payload["datasets"][0]["plugin"] == "datasets"
    methods = CliRunner().invoke(cli, ["list", "methods"], env={"COLUMNS": "200"})
    for name in ("sake", "dsn", "tvt", "zse_sbir", "clip_at"):  # the field's five methods
        assert f" {name} " in methods.output
    assert "(the [clip] extra)" in methods.output  # square brackets are text, not markup


def test_plugins_shows_origin_version_and_hooks():
    rows = json.loads(invoke("plugins", "--json").output)
    builtin = {row["name"]: row for row in rows}["datasets"]
    assert builtin["source"] == "entry point" and builtin["distribution"] == "sbirbench"
    assert builtin["version"] == __version__
    assert "register_datasets" in builtin["hooks"]


def test_help_does_not_import_torch_or_timm():
    code = (
        "import sys\n"
        "from sbirbench.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'timm', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_real_subprocess_errors_are_one_line():
    ok = subprocess.run(
        [sys.executable, "-m", "sbirbench", "list", "datasets"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "synthetic" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sbirbench", "list", "gizmos"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "Invalid value" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0, bad.stderr
    assert bad.stderr.startswith("error: ") and "sbirbench list --help" in bad.stderr


def test_errors_from_loader_workers_keep_their_own_message():
    from sbirbench.cli import one_line
    from sbirbench.errors import UserError

    wrapped = UserError(
        "Caught UnreadableImage in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n  File ...\n"
        "sbirbench.data.items.UnreadableImage: unreadable image /d/x.png: truncated\n"
    )
    assert one_line(wrapped) == "unreadable image /d/x.png: truncated"
    assert one_line(UserError("plain message\nsecond")) == "plain message"
