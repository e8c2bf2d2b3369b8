"""Binary substrate (v2/v3 of the paper): row i is the 16-bit code of token id i, most significant bit first,
as 0/1 values, each bit repeated d/16 times in a row (torch.repeat_interleave), so the matrix has rank <= 16.
Rows are not normalised (id 0 is the zero row), as in the paper.
"""

from __future__ import annotations

import numpy as np

from growlm.errors import GrowlmError

BITS = 16


def build_binary(vocab_size: int, dim: int) -> np.ndarray:
    """(V, dim) float32 of 0/1."""
    if dim <= 0 or dim % BITS:
        raise GrowlmError(
            f"`dim` {dim} is not a positive multiple of {BITS}; the binary substrate repeats each "
            f"of the {BITS} bits d/{BITS} times (e.g. `dim` 256)"
        )
    ids = np.arange(vocab_size, dtype=np.int64)
    bits = (ids[:, None] >> np.arange(BITS - 1, -1, -1)) & 1
    return np.repeat(bits.astype(np.float32), dim // BITS, axis=1)


def decode_binary(matrix: np.ndarray) -> np.ndarray:
    """Token ids back from binary rows (the first copy of each bit)."""
    copies = matrix.shape[1] // BITS
    bits = matrix[:, ::copies].astype(np.int64)
    return (bits << np.arange(BITS - 1, -1, -1)).sum(axis=1)
