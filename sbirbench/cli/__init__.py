"""The ``sbirbench`` command line.

Commands are imported only when invoked (``sbirbench --help`` imports neither torch nor
timm), plugins may add commands through the ``register_commands`` hook, and every error
a user can cause ends as one line on stderr with a non-zero exit (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from sbirbench import __version__
from sbirbench.errors import DEBUG_ENV, UserError, debug_enabled

#: Built-in commands: name -> "module:function" (imported on use).
COMMANDS: dict[str, str] = {
    "list": "sbirbench.cli.listing:list_command",
    "plugins": "sbirbench.cli.listing:plugins_command",
    "run": "sbirbench.cli.run:run_command",
    "eval": "sbirbench.cli.evaluate:eval_command",
    "leaderboard": "sbirbench.cli.leaderboard:leaderboard_command",
    "compare": "sbirbench.cli.leaderboard:compare_command",
    "data": "sbirbench.cli.data:data_group",
    "bench": "sbirbench.cli.bench:bench_command",
    "report": "sbirbench.cli.report:report_command",
    "new-method": "sbirbench.cli.new_method:new_method_command",
    "index": "sbirbench.cli.search:index_command",
    "search": "sbirbench.cli.search:search_command",
    "demo": "sbirbench.cli.demo:demo_command",
}


class LazyGroup(click.Group):
    """A group whose built-in commands are imported on use, plus plugin commands."""

    _plugin_commands_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        from sbirbench.plugins.manager import call_each, get_plugins

        caller = get_plugins(debug=debug_enabled()).manager.hook.register_commands
        for _ in call_each("register_commands", caller, {"cli": self}):
            pass  # each plugin adds its commands to the group; a broken one is skipped

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module_name, _, attr = COMMANDS[name].partition(":")
            return getattr(importlib.import_module(module_name), attr)
        self._add_plugin_commands()
        return self.commands.get(name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="sbirbench")
@click.option("--debug", is_flag=True, help="Show full tracebacks (also SBIRBENCH_DEBUG=1).")
def cli(debug: bool) -> None:
    """sbirbench: train, evaluate and compare zero-shot sketch-based image retrieval methods.

    \b
    Start here:
      sbirbench run pskd --dataset synthetic    train + evaluate on the embedded data set
      sbirbench list                            what methods, data sets, backbones exist
      sbirbench leaderboard                     tables from stored results
    """
    if debug:
        os.environ[DEBUG_ENV] = "1"


def one_line(exc: BaseException) -> str:
    """The message of a user error; for one re-raised from a DataLoader worker (whose text
    is torch's "Caught X in DataLoader worker" plus a traceback), the original message."""
    text = str(exc) or type(exc).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Caught ") and len(lines) > 1:
        _, _, original = lines[-1].partition(": ")
        return original or lines[-1]
    return lines[0] if lines else text


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point of the ``sbirbench`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args[: args.index("--") if "--" in args else len(args)]:
        os.environ[DEBUG_ENV] = "1"
    try:
        return cli.main(args=args, prog_name="sbirbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message())
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # click's own rendering is four lines (usage, hint, blank, error); one is enough.
        command = exc.ctx.command_path if exc.ctx is not None else "sbirbench"
        _fail(f"{exc.format_message()} (see '{command} --help')", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        if debug_enabled():
            raise
        _fail("interrupted", 130)
    except UserError as exc:
        if debug_enabled():
            raise
        _fail(one_line(exc), exc.exit_code)
    except Exception as exc:
        if debug_enabled():
            raise
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)
