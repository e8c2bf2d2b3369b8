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
    rows = np.ascontiguousarray(matrix) + 0  # + 0 turns -0.0 into 0.0, which compares equal
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    colliding = np.flatnonzero(counts[inverse] > 1)
    if colliding.size == 0:
        return []
    group_of = first[inverse[colliding]]  # each colliding id labelled by its group's lowest id
    order = np.lexsort((colliding, group_of))
    ids, labels = colliding[order], group_of[order]
    return np.split(ids, np.flatnonzero(np.diff(labels)) + 1)


def separate_collisions(matrix: np.ndarray, seed: int) -> np.ndarray:
    """Unit rows (V, d) float32 -> the same with every collision broken (see module docstring)."""
    out = matrix.copy()
    for group in collision_groups(out):
        for i in group[1:]:
            u = np.random.RandomState([seed, int(i)]).standard_normal(out.shape[1])
            row = out[i].astype(np.float64) + TIE_BREAK_SCALE * u / np.linalg.norm(u)
            out[i] = row / np.linalg.norm(row)
    if collision_groups(out):
        raise AssertionError("tie-breaker left identical rows")  # would mean a bug, not bad input
    return out
