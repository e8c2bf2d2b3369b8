"""One error type for everything a user can get wrong; the CLI turns it into a one-line message and exit 2.

A library message names what the caller passed by its API parameter, in backticks (`` `out` ``, `` `force` ``),
and config entries by their key (`train.lr`); it never spells a command-line flag. The CLI renders each
backticked parameter as the flag of the verb that ran (`out` -> --out): `GrowlmError.render(flags)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


class GrowlmError(Exception):
    """Bad input: the message says what is wrong, where, and how to fix it."""

    exit_code = 2

    def render(self, flags: Mapping[str, str]) -> str:
        """The message with each `parameter` that `flags` knows written as its flag (or metavar)."""
        return PARAMETER.sub(lambda m: flags.get(m.group(1), m.group(0)), str(self))
