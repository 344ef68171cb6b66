"""The one error type users see. The CLI turns it into a message on stderr and exit code 2."""


class UnveilError(Exception):
    """A problem with the user's input or environment, explained in plain words (no traceback)."""

    exit_code = 2


class NotAnImage(UnveilError):
    """The input is not an image file (the web API answers 415)."""


class TooLarge(UnveilError):
    """The input is over a size limit (the web API answers 413)."""
