"""The train/validation split and the per-source character cap, on per-document numbers only (no texts).

Split: each document's key is sha256("SEED:DOCUMENT_ID"); in every source the n_validation(n) documents with
the smallest keys go to validation (ties, which need equal ids, broken by position). Only the first 8 bytes of
each key are held in memory (8 bytes per document); the full keys are fetched for the few documents whose
prefixes tie at the boundary.

Cap: documents are taken in order while fewer than `limit` characters were taken before them; the last one is
cut to what is left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

KEY_BYTES = 32


def split_key(seed: int, doc_id: str) -> bytes:
    return hashlib.sha256(f"{seed}:{doc_id}".encode("utf-8")).digest()


def key_prefixes(keys: np.ndarray) -> np.ndarray:
    """uint64 of the first 8 bytes (big-endian, so integer order is key order) of uint8 [n, 32] keys."""
    return np.ascontiguousarray(keys[:, :8]).view(">u8").reshape(-1).astype(np.uint64)


def n_validation(n: int, val_fraction: float) -> int:
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return n_val


def validation_mask(prefixes: np.ndarray, n_val: int, full_key: Callable[[int], bytes]) -> np.ndarray:
    """Boolean mask of the n_val documents with the smallest keys (stable: equal keys taken by position)."""
    mask = np.zeros(len(prefixes), dtype=bool)
    if n_val <= 0:
        return mask
    order = np.argsort(prefixes, kind="stable")
    if n_val < len(prefixes) and prefixes[order[n_val - 1]] == prefixes[order[n_val]]:
        bound = prefixes[order[n_val - 1]]
        below = prefixes < bound
        tied = np.flatnonzero(prefixes == bound)
        ranked = sorted(tied.tolist(), key=lambda i: (full_key(i), i))
        mask[below] = True
        mask[ranked[: n_val - int(below.sum())]] = True
    else:
        mask[order[:n_val]] = True
    return mask


def split_by_keys(ids: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """Validation mask of documents with these ids, in memory (for small lists)."""
    keys = [split_key(seed, i) for i in ids]
    table = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
    return validation_mask(key_prefixes(table), n_validation(len(ids), val_fraction), keys.__getitem__)


def cap(chars: np.ndarray, limit: int | None) -> tuple[int, int | None]:
    """(number of documents taken, characters kept of the last one when it is cut, else None)."""
    if limit is None:
        return len(chars), None
    starts = np.cumsum(chars) - chars
    taken = int(np.searchsorted(starts, limit, side="left"))
    if taken and chars[taken - 1] > limit - starts[taken - 1]:
        return taken, int(limit - starts[taken - 1])
    return taken, None
