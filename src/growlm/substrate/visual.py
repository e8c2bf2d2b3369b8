"""Visual substrate: every token drawn with GNU Unifont glyphs into an S x S image (d = S*S), S in {16, 32, 64}.

Recipe "default" (growlm's):
- texts from the tokenizer (characters, n-grams, special names); byte-fallback and unused ids draw nothing;
- "baseline" placement (drawing.py): glyphs keep their vertical position; the paper's vertical ink centring
  merges glyphs that differ only in height, e.g. "." and "·" (with the built-in tokenizer at S = 32, 769 groups
  of identical images instead of 552);
- an n-character strip (S x n*S) is squeezed to S x S by averaging each run of n adjacent columns (grey levels,
  every column counts), instead of the paper's 1-bit nearest-neighbour resize that drops columns;
- no distortion; then mean-centring over the whole vocabulary, optional PCA rotation, row L2 norm;
- every token a distinct vector: identical rows (blank glyphs, homoglyphs, byte-fallback and unused ids,
  colliding n-grams) are separated by the tie-breaker in collisions.py.
Recipe "paper": the author's, quirks and collisions included (paper.py), then the same normalisation.

Normalisation: E = rownorm(X - colmean(X)), with colmean over all V rows. With `pca`, the centred rows are first
rotated onto all d principal axes (descending variance, each axis signed so its largest-magnitude loading is
positive, as scikit-learn's PCA does); a full-rank PCA is a rotation, so it changes coordinates, not geometry.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm import tqdm

from growlm.substrate.collisions import separate_collisions
from growlm.substrate.drawing import chunks_by_length, draw_strips, placement_offsets
from growlm.substrate.glyphs import Glyphs
from growlm.substrate.paper import paper_images

CELLS = (16, 32, 64)
RECIPES = ("default", "paper")


def default_images(texts: Sequence[str], glyphs: Glyphs, cell: int) -> np.ndarray:
    """(V, S*S) float32 grey images in [0, 1]; empty texts give blank images."""
    images = np.zeros((len(texts), cell * cell), dtype=np.float32)
    offsets = placement_offsets(glyphs, cell, "baseline")
    for n, ids in tqdm(chunks_by_length(texts), desc="drawing tokens", unit="batch", leave=False, disable=None):
        strips = draw_strips(glyphs, [texts[i] for i in ids], cell, offsets)
        squeezed = strips.reshape(len(ids), cell, cell, n).mean(axis=3, dtype=np.float32)
        images[ids] = squeezed.reshape(len(ids), -1)
    return images


def token_images(texts: Sequence[str], glyphs: Glyphs, cell: int, recipe: str) -> np.ndarray:
    """(len(texts), S*S) float32 images before normalisation, by the recipe's drawing."""
    return {"default": default_images, "paper": paper_images}[recipe](texts, glyphs, cell)


def build_visual(texts: Sequence[str], glyphs: Glyphs, cell: int, recipe: str, pca: bool, seed: int) -> np.ndarray:
    """(V, S*S) float32 unit rows."""
    images = token_images(texts, glyphs, cell, recipe)
    images -= images.mean(axis=0, dtype=np.float64).astype(np.float32)
    if pca:
        images = pca_rotate(images)
    matrix = normalise_rows(images)
    return separate_collisions(matrix, seed) if recipe == "default" else matrix


def pca_rotate(centred: np.ndarray) -> np.ndarray:
    covariance = (centred.T @ centred).astype(np.float64)
    _, axes = np.linalg.eigh(covariance)  # ascending eigenvalues
    axes = axes[:, ::-1]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    return centred @ (axes * signs).astype(np.float32)


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, in place."""
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), np.finfo(np.float32).tiny)
    return matrix
