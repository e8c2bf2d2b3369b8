"""`growlm substrate inspect`: a text report of a substrate folder and a PNG of sample tokens next to their vectors."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_bytes
from growlm.io.hashing import sha256_file
from growlm.io.ownership import PNG_METADATA
from growlm.substrate.collisions import collision_groups
from growlm.substrate.glyphs import load_glyphs
from growlm.substrate.store import Substrate
from growlm.substrate.visual import token_images
from growlm.tokenizer import default_tokenizer, load_tokenizer
from growlm.tokenizer import layout as L

SAMPLE_CHARS = "AЖ中"


def id_category(i: int) -> str:
    if L.is_char_id(i):
        return "characters"
    if L.is_special_id(i):
        return "specials"
    if L.is_byte_id(i):
        return "byte fallback"
    return "n-gram slots"


def report(sub: Substrate) -> dict[str, Any]:
    matrix = sub.matrix.numpy()
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    groups = collision_groups(matrix)
    by_category: dict[str, int] = {}
    for i in (int(i) for group in groups for i in group):
        by_category[id_category(i)] = by_category.get(id_category(i), 0) + 1
    return {
        "kind": sub.kind,
        "shape": list(matrix.shape),
        "layout": sub.manifest["layout"],
        "sha256": sub.sha256,
        "params": sub.manifest["params"],
        "row_norm": {"min": float(norms.min()), "mean": float(norms.mean()), "max": float(norms.max())},
        "collision_groups": len(groups),
        "colliding_rows": int(sum(len(g) for g in groups)),
        "colliding_rows_by_category": by_category,
        "largest_collision_group": int(max((len(g) for g in groups), default=0)),
    }


def format_report(path: str | Path, rep: dict[str, Any]) -> str:
    norms = rep["row_norm"]
    params = ", ".join(f"{k}={v}" for k, v in sorted(rep["params"].items()))
    by_cat = ", ".join(f"{k} {v}" for k, v in sorted(rep["colliding_rows_by_category"].items())) or "none"
    return "\n".join(
        [
            f"substrate {path}",
            f"  kind        {rep['kind']}  ({params})",
            f"  matrix      {rep['shape'][0]} x {rep['shape'][1]} float32, layout {rep['layout']}",
            f"  sha256      {rep['sha256']} (matches the matrix)",
            f"  row norms   min {norms['min']:.6f}  mean {norms['mean']:.6f}  max {norms['max']:.6f}",
            f"  collisions  {rep['collision_groups']} groups of identical rows, {rep['colliding_rows']} rows "
            f"(largest group {rep['largest_collision_group']}; rows by id range: {by_cat})",
        ]
    )


def sample_tokens(sub: Substrate) -> list[tuple[int, str]]:
    """(id, text) of a few tokens: sample characters, the first n-gram if any, <s>."""
    tok = _tokenizer_of(sub.manifest["params"])
    samples = [(ord(ch), ch) for ch in SAMPLE_CHARS]
    if tok is not None and tok.ngrams:
        first = min(tok.ngrams)
        samples.append((first, tok.ngrams[first]))
    samples.append((L.BOS_ID, L.SPECIAL_TOKENS[L.BOS_ID - L.SPECIAL_BASE]))
    return samples


def write_png(sub: Substrate, png: str | Path) -> None:
    """Rows of: the token's drawn image (visual substrates whose font is still there) and its vector."""
    samples = sample_tokens(sub)
    images = _sample_images(sub, [text for _, text in samples])
    fig = Figure(figsize=(5, 2.2 * len(samples)), layout="constrained")
    axes = fig.subplots(len(samples), 2, squeeze=False)
    for (token_id, text), image, (ax_img, ax_vec) in zip(samples, images, axes):
        label = _label(text)
        if image is not None:
            ax_img.imshow(image, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax_img.text(0.5, 0.5, label, ha="center", va="center", fontsize=12)
        ax_img.set_title(f"id 0x{token_id:04X} {label}", fontsize=9)
        vector = sub.matrix[token_id].numpy()
        limit = float(np.abs(vector).max()) or 1.0
        ax_vec.imshow(_as_grid(vector), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax_vec.set_title(f"vector ({vector.size} values)", fontsize=9)
        for ax in (ax_img, ax_vec):
            ax.set_xticks([])
            ax.set_yticks([])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata=PNG_METADATA)
    atomic_write_bytes(png, buffer.getvalue())


def _label(text: str) -> str:
    """ASCII text as is, anything else as code points (matplotlib's default font lacks most scripts)."""
    return repr(text) if text.isascii() else " ".join(f"U+{ord(ch):04X}" for ch in text)


def _as_grid(vector: np.ndarray) -> np.ndarray:
    side = math.isqrt(vector.size)
    if side * side == vector.size:
        return vector.reshape(side, side)
    rows = 16 if vector.size % 16 == 0 else 1
    return vector.reshape(rows, -1)


def _sample_images(sub: Substrate, texts: list[str]) -> list[np.ndarray | None]:
    params = sub.manifest["params"]
    font = params.get("font")
    if sub.kind != "visual" or not Path(font).is_file() or sha256_file(font) != params["font_sha256"]:
        return [None] * len(texts)
    glyphs = load_glyphs(font, {ord(ch) for text in texts for ch in text})
    cell = params["cell"]
    return list(token_images(texts, glyphs, cell, params["recipe"]).reshape(len(texts), cell, cell))


def _tokenizer_of(params: dict[str, Any]):
    ref = params.get("tokenizer")
    if ref == "default":
        return default_tokenizer()
    if ref is None:
        return None
    try:
        tok = load_tokenizer(ref)
    except GrowlmError:
        return None  # the folder moved or changed since the build: show no n-gram
    return tok if tok.sha256 == params.get("tokenizer_sha256") else None
