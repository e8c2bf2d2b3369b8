"""Fixed map from a substrate's dimension d to a model's d_model, when they differ.

lift(E, d_model) = rescale_rows(E @ Q), with Q a fixed d x d_model matrix:
- Q comes from the QR decomposition of a Gaussian matrix drawn with numpy's legacy RandomState(LIFT_SEED) (a
  stream NumPy keeps fixed), columns signed so R has a positive diagonal; it has orthonormal rows when
  d_model > d (an isometry: every distance and norm is kept) and orthonormal columns when d_model < d (a
  projection onto a fixed random subspace);
- each lifted row is rescaled to its original L2 norm (a no-op for d_model > d; zero rows stay zero).
Identity when d_model == d. Q is computed in float64 on the CPU; the product runs in float32 on the matrix's device.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from growlm.errors import GrowlmError

LIFT_SEED = 0


@lru_cache(maxsize=4)
def lift_map(d: int, d_model: int) -> np.ndarray:
    """The fixed (d, d_model) float64 matrix Q."""
    tall = np.random.RandomState(LIFT_SEED).standard_normal((max(d, d_model), min(d, d_model)))
    q, r = np.linalg.qr(tall)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    return q if d > d_model else q.T


def lift(matrix: torch.Tensor, d_model: int) -> torch.Tensor:
    """(V, d) -> (V, d_model) float32, fixed and deterministic (see module docstring)."""
    d = matrix.shape[1]
    if d_model <= 0:
        raise GrowlmError(f"model width {d_model} must be positive")
    if d_model == d:
        return matrix.to(torch.float32)
    q = torch.from_numpy(lift_map(d, d_model)).to(device=matrix.device, dtype=torch.float32)
    source = matrix.to(torch.float32)
    lifted = source @ q
    if d_model < d:
        scale = source.norm(dim=1, keepdim=True) / lifted.norm(dim=1, keepdim=True).clamp_min(1e-30)
        lifted = lifted * scale
    return lifted
