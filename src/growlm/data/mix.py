"""Source entries NAME[:WEIGHT], as given to `growlm data prepare --source` or in a run config's data.sources.

NAME is a named source (growlm data list) or a local path (PATH#FIELD for a record field). WEIGHT is the part
after the last colon when it is a number, so paths that hold colons still work. Weights are given to every
source or to none: without weights the mixture is proportional to each source's training tokens (see
prepare.py); with weights, each source's share of training windows is its weight over their sum.
"""

from __future__ import annotations

import math

from growlm.data.sources import SOURCES
from growlm.errors import GrowlmError

Weighted = tuple[str, float | None]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_source(entry: str, where: str) -> Weighted:
    """(name, weight or None) of one NAME[:WEIGHT] entry; `where` names the entry's origin in errors."""
    name, sep, tail = entry.rpartition(":")
    weight = _number(tail) if sep else None
    if weight is None:
        if sep and name in SOURCES:
            raise GrowlmError(
                f"{where}: weight {tail!r} in {entry!r} is not a number; write NAME:WEIGHT, e.g. '{name}:2'"
            )
        name = entry
    if not name:
        raise GrowlmError(f"{where}: entry {entry!r} has no source name; write NAME or NAME:WEIGHT (growlm data list)")
    return name, weight


def check_weights(weights: list[float | None], where: str) -> None:
    """Weights on every source or on none, and each a positive number."""
    given = [w for w in weights if w is not None]
    if given and len(given) != len(weights):
        raise GrowlmError(
            f"{where}: give a weight to every source (NAME:WEIGHT) or to none "
            f"(no weights = mix in proportion to each source's tokens)"
        )
    if any(not math.isfinite(w) or w <= 0 for w in given):
        raise GrowlmError(f"{where}: source weights must be positive numbers, got {', '.join(map(str, given))}")


def parse_sources(entries: list[str], where: str) -> list[Weighted]:
    """(name, weight or None) per NAME[:WEIGHT] entry, weights checked; what `prepare` takes."""
    sources = [parse_source(e, where) for e in entries]
    check_weights([w for _, w in sources], where)
    return sources
