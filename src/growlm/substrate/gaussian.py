"""Random substrate (ablation): rows drawn from a standard Gaussian with numpy's legacy RandomState(seed) (a stream
NumPy keeps fixed across versions), in row order, then L2-normalised."""

from __future__ import annotations

import numpy as np

from growlm.errors import GrowlmError

CHUNK_ROWS = 4096


def build_random(vocab_size: int, dim: int, seed: int) -> np.ndarray:
    """(V, dim) float32 unit rows."""
    if dim <= 0:
        raise GrowlmError(f"`dim` {dim} must be positive (e.g. `dim` 256)")
    rng = np.random.RandomState(seed)
    out = np.empty((vocab_size, dim), dtype=np.float32)
    for start in range(0, vocab_size, CHUNK_ROWS):  # chunks draw the same stream as one call, in less memory
        rows = rng.standard_normal((min(CHUNK_ROWS, vocab_size - start), dim))
        out[start : start + len(rows)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out
