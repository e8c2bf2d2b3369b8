"""Token texts drawn as strips of glyph cells: one S x S cell per character, side by side (S rows, n*S columns).

A cell holds the 16-px glyph scaled by k = S/16 (each pixel a k x k block, so S = 32 and 64 are exact 2x and 4x
replications of the 16-px glyph) and placed at a per-glyph offset:
- "baseline": the glyph's 16-row cell fills the cell height, so every glyph keeps Unifont's baseline and a period
  stays distinguishable from a middle dot; horizontally the advance width is centred.
- "ink": the paper's placement, the way Pillow's ImageDraw puts a character at
  ((S - width) // 2, (S - ink height) // 2 - ink top): the advance width centred horizontally and the ink box
  centred vertically.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal, Sequence

import numpy as np

from growlm.substrate.glyphs import GLYPH_PX, Glyphs

Placement = Literal["baseline", "ink"]
CHUNK = 2048  # tokens drawn at once, bounds memory at S = 64


def placement_offsets(glyphs: Glyphs, cell: int, placement: Placement) -> tuple[np.ndarray, np.ndarray]:
    """Per-glyph (row, column) offset in cell pixels of the scaled 16 x 16 glyph cell's top-left corner."""
    k = cell // GLYPH_PX
    dx = (cell - k * glyphs.width.astype(np.int64)) // 2
    if placement == "baseline":
        return np.zeros_like(dx), dx
    inked = glyphs.bits.any(axis=2)  # (glyph, row)
    top = inked.argmax(axis=1)
    height = np.where(inked.any(axis=1), GLYPH_PX - inked[:, ::-1].argmax(axis=1) - top, 0)
    return (cell - k * height) // 2 - k * top, dx


def draw_cells(glyphs: Glyphs, rows: np.ndarray, cell: int, offsets: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(m, S, S) bool cells of the glyph table rows `rows` (m,)."""
    k = cell // GLYPH_PX
    dy, dx = offsets
    pixels = np.arange(cell)
    src_r = pixels[None, :] - dy[rows][:, None]
    src_c = pixels[None, :] - dx[rows][:, None]
    ok_r = (src_r >= 0) & (src_r < GLYPH_PX * k)
    ok_c = (src_c >= 0) & (src_c < GLYPH_PX * k)
    ri = np.clip(src_r, 0, GLYPH_PX * k - 1) // k
    ci = np.clip(src_c, 0, GLYPH_PX * k - 1) // k
    cells = glyphs.bits[rows[:, None, None], ri[:, :, None], ci[:, None, :]]
    return cells & ok_r[:, :, None] & ok_c[:, None, :]


def draw_strips(glyphs: Glyphs, texts: Sequence[str], cell: int, offsets: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(m, S, n*S) bool strips of m texts that all have n characters."""
    n = len(texts[0])
    rows = np.stack([glyphs.index(t) for t in texts])  # (m, n)
    cells = draw_cells(glyphs, rows.ravel(), cell, offsets).reshape(len(texts), n, cell, cell)
    return cells.transpose(0, 2, 1, 3).reshape(len(texts), cell, n * cell)


def chunks_by_length(texts: Sequence[str]) -> list[tuple[int, np.ndarray]]:
    """(n, ids) batches of at most CHUNK ids whose texts have n >= 1 characters, in a fixed order."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        if text:
            by_length[len(text)].append(i)
    return [
        (n, np.array(ids[s : s + CHUNK])) for n, ids in sorted(by_length.items()) for s in range(0, len(ids), CHUNK)
    ]
