"""Tests only: the named points where a test makes growlm fail as a crash, Ctrl-C or a full disk would.

Production code marks each such moment with `crash_point(NAME)` and nothing else; with GROWLM_FAULT unset it does
nothing. GROWLM_FAULT=NAME:N[:MODE] makes the N-th `crash_point(NAME)` of a process (N defaults to 1) kill it with
SIGKILL (MODE kill, the default), raise KeyboardInterrupt (interrupt) or raise OSError ENOSPC (enospc). Under
torchrun, GROWLM_FAULT_RANK=R arms it on rank R only.

Points: step (an optimizer step), checkpoint (a checkpoint written, not yet renamed into place), export (a stage
model written, not yet renamed), stage (between stages), prepare (a `growlm data prepare` job finished), and
"write NAME" (any atomic write of a file NAME, e.g. eval_by_depth.json of `growlm eval-run`, written but not yet
renamed).
"""

from __future__ import annotations

import errno
import os
import signal

_HITS: dict[str, int] = {}  # calls of each armed point in this process (tests reset it)


def crash_point(name: str) -> None:
    """Tests only: GROWLM_FAULT=NAME[:N[:MODE]] makes the process fail here (see the module docstring)."""
    spec = os.environ.get("GROWLM_FAULT")
    if not spec:
        return
    point, _, rest = spec.partition(":")
    count, _, mode = rest.partition(":")
    rank = os.environ.get("RANK", "0")
    if point != name or os.environ.get("GROWLM_FAULT_RANK", rank) != rank:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] != int(count or 1):
        return
    if mode == "interrupt":
        raise KeyboardInterrupt
    if mode == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
    os.kill(os.getpid(), signal.SIGKILL)
