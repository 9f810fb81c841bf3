"""How training stops early: Ctrl-C or SIGTERM (a flag checked between steps), and the
errors that carry the reason to the user."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

from sbirbench.errors import UserError


class TrainingStopped(UserError):
    """Training stopped early (non-finite loss); the last good checkpoint is kept."""

    exit_code = 1


class Interrupted(UserError):
    """Ctrl-C (or SIGTERM): a checkpoint was saved; ``--resume`` continues."""

    exit_code = 130


class StopFlag:
    """SIGINT/SIGTERM set a flag checked between steps; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
