"""The one exception type for mistakes a user can make."""


class UserError(Exception):
    """A problem the user can fix (bad path, unknown name, bad value).

    The CLI prints ``error: <message>`` on one line and exits non-zero; the traceback
    is shown only with ``--debug``. Keep messages to one line that says what is wrong
    and, where it helps, what to do instead.
    """

    exit_code = 2


#: Set by ``--debug``: show tracebacks, and raise where sbirbench would warn and go on.
DEBUG_ENV = "SBIRBENCH_DEBUG"


def debug_enabled() -> bool:
    """Whether ``--debug`` (or ``SBIRBENCH_DEBUG=1``) is in effect."""
    import os

    return os.environ.get(DEBUG_ENV, "") not in ("", "0")
