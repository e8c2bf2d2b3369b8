"""How a run starts: the one `start` argument of the grow recipe (growlm.grow, `growlm grow`).

New(): a new run in `out` (New(force=True) replaces what is there, only ever something growlm made); Resume(): the
run in `out` continues from its newest intact checkpoint with the config it started with; Branch(base): a new run
from the finished run `base`, whose stages are the config's first ones, so only the later stages train.

Messages call these by the options of `growlm grow`: `resume` (Resume()), `force` (New(force=True)), `base`
(Branch(base)).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class New:
    """Start a new run; force: replace an existing run (or other folder growlm made) in `out`."""

    force: bool = False


@dataclass(frozen=True)
class Resume:
    """Continue the run in `out` from its newest intact checkpoint, exactly as it started."""


@dataclass(frozen=True)
class Branch:
    """Start a new run from the finished run `base` (copied, never changed); force: as for New."""

    base: str | Path
    force: bool = False


Start = New | Resume | Branch
