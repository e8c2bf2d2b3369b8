"""One error type for everything a user can get wrong; the CLI turns it into a one-line message and exit 2."""


class GrowlmError(Exception):
    """Bad input: the message says what is wrong, where, and how to fix it."""

    exit_code = 2
