"""The one exception type for mistakes a user can make."""


class UserError(Exception):
    """A problem the user can fix (bad path, unknown name, bad value).

    The CLI prints ``error: <message>`` on one line and exits non-zero; the traceback
    is shown only with ``--debug``. Keep messages to one line that says what is wrong
    and, where it helps, what to do instead.
    """

    exit_code = 2
