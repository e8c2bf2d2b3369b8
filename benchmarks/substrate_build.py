"""Substrate build time: full 65,536-token builds against a per-token Pillow reference, in one process.

Reference: drawing tokens one at a time with Pillow (ImageDraw.text with Unifont's .otf, as the paper's notebook
does, without its distortion), timed on a sample and scaled to the whole vocabulary.
Run: .venv/bin/python -m benchmarks.substrate_build [--cells 16 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from growlm.substrate import build_substrate
from growlm.tokenizer import default_tokenizer
from growlm.tokenizer.layout import VOCAB_SIZE

OTF = "/usr/share/fonts/opentype/unifont/unifont.otf"
REFERENCE_SAMPLE = 2000


def reference_seconds(cell: int) -> float:
    """Per-token Pillow drawing of a sample of the vocabulary, scaled to all 65,536 tokens."""
    font = ImageFont.truetype(OTF, cell, layout_engine=ImageFont.Layout.BASIC)
    tok = default_tokenizer()
    texts = [tok.token_text(i) or "" for i in range(0, VOCAB_SIZE, VOCAB_SIZE // REFERENCE_SAMPLE)]
    start = time.perf_counter()
    for text in texts:
        img = Image.new("L", (cell * max(len(text), 1), cell), color=255)
        draw = ImageDraw.Draw(img)
        for i, ch in enumerate(text):
            left, top, right, bottom = font.getbbox(ch)
            draw.text((i * cell + (cell - (right - left)) // 2, (cell - (bottom - top)) // 2 - top), ch, font=font)
        np.asarray(img.resize((cell, cell)))
    return (time.perf_counter() - start) * VOCAB_SIZE / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, nargs="+", default=[16, 32])
    args = parser.parse_args()
    print(f"{'build':<28}{'seconds':>10}{'vs reference':>14}")
    for cell in args.cells:
        reference = reference_seconds(cell)
        print(f"{f'reference Pillow, cell {cell}':<28}{reference:>10.2f}{1.0:>13.2f}x")
        for label, kwargs in [("visual default", {}), ("visual paper", {"recipe": "paper"})]:
            start = time.perf_counter()
            build_substrate("visual", cell=cell, **kwargs)
            seconds = time.perf_counter() - start
            print(f"{f'{label}, cell {cell}':<28}{seconds:>10.2f}{reference / seconds:>13.2f}x")
    for kind in ("binary", "random"):
        start = time.perf_counter()
        build_substrate(kind)
        print(f"{f'{kind}, dim 256':<28}{time.perf_counter() - start:>10.2f}{'':>14}")


if __name__ == "__main__":
    main()
