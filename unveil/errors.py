"""The one error type users see. The CLI turns it into a message on stderr and exit code 2."""


class UnveilError(Exception):
    """A problem with the user's input or environment, explained in plain words (no traceback)."""

    exit_code = 2
