"""The console: rich output on rank 0 only, quiet and JSON-lines modes for batch jobs."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

MODES = ("rich", "quiet", "jsonl")


def process_rank() -> int:
    """This process's global rank under torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


class Output:
    """Where sbirbench talks to the user. Non-zero ranks stay silent."""

    def __init__(self, mode: str = "rich") -> None:
        self.mode = mode if mode in MODES else "rich"
        self.active = process_rank() == 0
        quiet = not self.active or self.mode != "rich"
        self.console = Console(stderr=True, quiet=quiet, highlight=False)
        self.log_path: Path | None = None

    def attach_log(self, path: Path) -> None:
        """Also append every message, as plain text, to ``path`` (rank 0)."""
        self.log_path = path if self.active else None

    def _log(self, message: str) -> None:
        if self.log_path is None:
            return
        try:
            with open(self.log_path, "a") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {Text.from_markup(message)}\n")
        except OSError as exc:  # the run's own writes report the cause; the log must not
            path, self.log_path = self.log_path, None
            self.warn(
                f"cannot write {path} ({exc.strerror or exc}); the log goes to the console only"
            )

    def record(self, message: str) -> None:
        """A line for the run's log file only (the console shows it its own way)."""
        if self.active:
            self._log(escape(message))

    def info(self, message: str, **fields: Any) -> None:
        """A line for people (rich mode) or an event record (jsonl mode)."""
        if not self.active:
            return
        self._log(message)
        if self.mode == "jsonl":
            self.event("info", message=Text.from_markup(message).plain, **fields)
        else:
            self.console.print(message)

    def warn(self, message: str) -> None:
        """Warnings show in every mode except on non-zero ranks."""
        if not self.active:
            return
        self._log(f"warning: {message}")
        if self.mode == "jsonl":
            self.event("warning", message=message)
        else:
            print(f"warning: {message}", file=sys.stderr)

    def log_failure(self, exc: BaseException) -> None:
        """Record in the run's log (not on the console, where the CLI reports it) why the
        run stopped."""
        lines = str(exc).strip().splitlines()
        self._log(escape(f"stopped: {type(exc).__name__}" + (f": {lines[0]}" if lines else "")))

    def event(self, kind: str, **fields: Any) -> None:
        """One JSON line on stdout (jsonl mode only)."""
        if self.active and self.mode == "jsonl":
            print(
                json.dumps({"event": kind, "time": round(time.time(), 3), **fields}, default=str),
                flush=True,
            )


_output: Output | None = None


def output() -> Output:
    """The process-wide output (rich mode unless :func:`set_output` changed it)."""
    global _output
    if _output is None:
        _output = Output()
    return _output


def set_output(mode: str) -> Output:
    """Switch the process-wide output mode."""
    global _output
    _output = Output(mode)
    return _output
