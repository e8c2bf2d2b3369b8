"""The author's visual recipe (AVBochkov/PGT, _tokenizer-builder-bvv241-*.ipynb), quirks included.

Per token text (specials as their literal names, byte-fallback and unused ids as their vocabulary pieces such as
"<0x41>" and "<unused_D800>", exactly as the notebook draws its vocabulary keys):
1. draw an S x n*S strip, "ink" placement (drawing.py);
2. the fixed distortion: Python's and NumPy's generators are reseeded with 42 on every call, so every token gets the
   same distortion. Texts made only of Latin (U+0000-024F), Greek, Cyrillic and Armenian (U+0370-058F) are
   rotated by the same angle (nearest neighbour, white fill), shifted by the same (dx, dy), salted with the same 1 %
   noise mask of the strip's shape, Gaussian-blurred (radius 0.5) and thresholded at 128. Every other text only
   gets the same 0.1 % salt mask;
3. a 1-bit strip wider than S is resized to S x S; Pillow resizes 1-bit images with nearest neighbour whatever
   filter is asked for, so this keeps every n-th column and drops the rest.
The bits then go through the shared normalisation in visual.py (mean-centring, optional PCA, row L2 norm).

Differences from the notebook, by necessity: glyphs come from Unifont's 16-px bitmaps scaled k-fold instead of
Unifont 14's TrueType file drawn by Pillow at S px. Checked against the notebook's code run on Unifont 15's .otf at
S = 32, the images are pixel-identical for Latin, Cyrillic, Armenian, CJK and Hangul characters, n-grams, specials
and placeholders; they differ where Pillow's raqm layout shapes text (Arabic letters become presentation forms)
and where it draws nothing (newline, carriage return, soft hyphen, which the paper saw collide with space; the
.hex has visible glyphs for them). Space, no-break space and the other blank spaces still share one vector.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from growlm.substrate.drawing import chunks_by_length, draw_strips, placement_offsets
from growlm.substrate.glyphs import Glyphs

SEED = 42
ROTATION_DEG, SHIFT_PX, NOISE, BLUR_RADIUS = 4, 2, 0.01, 0.5
OTHER_SCRIPT_NOISE = 0.001


def is_distorted_script(text: str) -> bool:
    """The notebook's `is_easy_script`: only Latin, Greek, Cyrillic and Armenian texts get the full distortion."""
    return all(cp <= 0x024F or 0x0370 <= cp <= 0x058F for cp in map(ord, text))


def paper_images(texts: Sequence[str], glyphs: Glyphs, cell: int) -> np.ndarray:
    """(V, S*S) float32 0/1 images of every token."""
    images = np.zeros((len(texts), cell * cell), dtype=np.float32)
    offsets = placement_offsets(glyphs, cell, "ink")
    batches = chunks_by_length(texts)
    progress = tqdm(
        total=sum(map(is_distorted_script, texts)), desc="paper distortion", unit="tok", leave=False, disable=None
    )
    for n, ids in batches:
        strips = draw_strips(glyphs, [texts[i] for i in ids], cell, offsets)
        distorted = np.array([is_distorted_script(texts[i]) for i in ids])
        strips[~distorted] |= _noise_mask(strips.shape[1:], OTHER_SCRIPT_NOISE)
        for j in np.flatnonzero(distorted):
            strips[j] = _distort(strips[j])
        progress.update(int(distorted.sum()))
        if n > 1:
            strips = strips[:, :, _nearest_columns(n * cell, cell)]
        images[ids] = strips.reshape(len(ids), -1)
    progress.close()
    return images


@lru_cache(maxsize=1)
def _rotation_and_shift() -> tuple[float, int, int]:
    rng = random.Random(SEED)
    angle = rng.uniform(-ROTATION_DEG, ROTATION_DEG)
    return angle, rng.randint(-SHIFT_PX, SHIFT_PX), rng.randint(-SHIFT_PX, SHIFT_PX)


@lru_cache(maxsize=None)
def _noise_mask(shape: tuple[int, int], level: float) -> np.ndarray:
    return np.random.RandomState(SEED).rand(*shape) < level


def _distort(ink: np.ndarray) -> np.ndarray:
    angle, dx, dy = _rotation_and_shift()
    img = Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).rotate(angle, expand=False, fillcolor=255)
    shifted = Image.new("L", img.size, color=255)
    shifted.paste(img, (dx, dy))
    pixels = np.array(shifted)
    pixels[_noise_mask(pixels.shape, NOISE)] = 0
    blurred = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius=BLUR_RADIUS))
    return np.asarray(blurred) < 128


@lru_cache(maxsize=None)
def _nearest_columns(width: int, cell: int) -> np.ndarray:
    """The source column Pillow's nearest-neighbour resize keeps for each of the `cell` output columns."""
    columns = np.tile(np.arange(width, dtype=np.int32), (cell, 1))
    return np.asarray(Image.fromarray(columns).resize((cell, cell), Image.Resampling.NEAREST))[0].astype(np.int64)
