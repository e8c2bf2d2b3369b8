"""Collisions (token ids whose rows are identical) and the default recipe's tie-breaker.

Tie-breaker: in each group of identical rows the lowest id keeps its vector; every other id i gets
    e_i <- normalise(e_i + TIE_BREAK_SCALE * u_i),
where u_i is a unit Gaussian direction drawn from numpy's legacy RandomState([seed, i]) (a stream NumPy keeps
fixed across versions), so the perturbation of an id depends only on the seed and the id, not on which other
tokens the vocabulary holds. Group members end up cos ~ 0.97 from the kept vector and ~ 0.94 from each other:
still alike (homoglyphs look alike) but clearly separable.
"""

from __future__ import annotations

import numpy as np

TIE_BREAK_SCALE = 0.25


def collision_groups(matrix: np.ndarray) -> list[np.ndarray]:
    """Ascending ids of each group of 2+ identical rows, groups ordered by their lowest id."""
    rows = np.ascontiguousarray(matrix, dtype=np.float32)
    candidates = _ids_sharing_a_hash(rows)
    if candidates.size == 0:
        return []
    keys = _canonical(rows[candidates]).view(np.dtype((np.void, 4 * rows.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    colliding = np.flatnonzero(counts[inverse] > 1)
    group_of = first[inverse[colliding]]  # each colliding row labelled by its group's first (lowest) row
    order = np.lexsort((colliding, group_of))
    ids, labels = candidates[colliding[order]], group_of[order]
    return np.split(ids, np.flatnonzero(np.diff(labels)) + 1) if ids.size else []


def _ids_sharing_a_hash(rows: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Ids whose 32-bit hash of the row's exact bits is shared: identical rows always are, most others not."""
    weights = np.random.RandomState(0).randint(0, 2**32, size=rows.shape[1], dtype=np.uint64).astype(np.uint32) | 1
    hashes = np.concatenate(
        [
            (_canonical(rows[s : s + chunk]).view(np.uint32) * weights).sum(axis=1, dtype=np.uint32)
            for s in range(0, len(rows), chunk)
        ]
    )  # exact integer arithmetic, wraps mod 2**32
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1)


def _canonical(rows: np.ndarray) -> np.ndarray:
    return rows + np.float32(0)  # turns -0.0 into 0.0, which compares equal


def separate_collisions(matrix: np.ndarray, seed: int) -> np.ndarray:
    """Break every collision among unit rows (V, d) float32, in place (see module docstring); returns `matrix`."""
    movers = [int(i) for group in collision_groups(matrix) for i in group[1:]]
    if not movers:
        return matrix
    directions = np.stack([np.random.RandomState([seed, i]).standard_normal(matrix.shape[1]) for i in movers])
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    moved = matrix[movers].astype(np.float64) + TIE_BREAK_SCALE * directions
    matrix[movers] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    if collision_groups(matrix):
        raise AssertionError("tie-breaker left identical rows")  # would mean a bug, not bad input
    return matrix
