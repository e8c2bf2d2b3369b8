"""Glyph bitmaps of the Basic Multilingual Plane at Unifont's native 16 px.

Sources: a GNU Unifont .hex file (lines "XXXX:HEX", 32 hex digits = an 8 x 16 glyph, 64 = 16 x 16) or any
.otf/.ttf outline font rendered with Pillow at 16 px (thresholded at half intensity; Unifont 15's .otf gives the
.hex bitmap for 99.5 % of glyphs, the rest are combining marks placed differently). Every glyph is stored in a
16 x 16 cell (ink = True) with its advance width (8 or 16 for Unifont; 0 where the source has no glyph). Code
points above U+FFFF are outside the table: every vocabulary id is a BMP code point, and characters from other
planes inside n-grams draw as blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from growlm.errors import GrowlmError
from growlm.io.hashing import sha256_file

GLYPH_PX = 16
BMP_SIZE = 0x10000
BLANK = BMP_SIZE  # index of an always-empty cell, used for characters outside the BMP
DEFAULT_FONT = "/usr/share/unifont/unifont.hex"
INSTALL_HINT = "install GNU Unifont with `apt-get install unifont` (gives /usr/share/unifont/unifont.hex)"


@dataclass(frozen=True)
class Glyphs:
    bits: np.ndarray  # (BMP_SIZE + 1, 16, 16) bool, ink = True; the last cell is blank
    width: np.ndarray  # (BMP_SIZE + 1,) uint8 advance width in pixels
    path: str
    sha256: str

    def index(self, text: str) -> np.ndarray:
        """Table rows of the characters of `text` (BLANK for characters outside the BMP)."""
        return np.array([min(ord(ch), BLANK) for ch in text], dtype=np.int64)


def load_glyphs(path: str | Path, codepoints: set[int] | None = None) -> Glyphs:
    """Glyphs of a .hex/.otf/.ttf font; `codepoints` limits the (slow) rendering of outline fonts."""
    path = Path(path)
    if not path.is_file():
        raise GrowlmError(f"font file {path} not found; {INSTALL_HINT}, or pass `font`, a .hex/.otf/.ttf file")
    suffix = path.suffix.lower()
    if suffix == ".hex":
        bits, width = _read_hex(path)
    elif suffix in (".otf", ".ttf"):
        bits, width = _render_outline(path, codepoints)
    else:
        raise GrowlmError(f"font file {path} is not .hex, .otf or .ttf; pass a Unifont file ({INSTALL_HINT})")
    return Glyphs(bits, width, str(path), sha256_file(path))


def _empty_table() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((BMP_SIZE + 1, GLYPH_PX, GLYPH_PX), dtype=bool), np.zeros(BMP_SIZE + 1, dtype=np.uint8)


def _read_hex(path: Path) -> tuple[np.ndarray, np.ndarray]:
    bits, width = _empty_table()
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            code, _, digits = line.partition(":")
            try:
                cp = int(code, 16)
                raw = bytes.fromhex(digits)
            except ValueError:
                raise GrowlmError(f"{path}:{lineno}: not a Unifont .hex line ('XXXX:' + 32 or 64 hex digits)") from None
            if len(raw) not in (16, 32):
                raise GrowlmError(f"{path}:{lineno}: glyph has {len(digits)} hex digits; Unifont .hex needs 32 or 64")
            if cp >= BMP_SIZE:
                continue
            w = len(raw) // 2  # 16 bytes = 16 rows of 8 px; 32 bytes = 16 rows of 16 px
            rows = np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).reshape(GLYPH_PX, w).astype(bool)
            bits[cp, :, :w] = rows
            width[cp] = w
    return bits, width


def _render_outline(path: Path, codepoints: set[int] | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        # BASIC layout draws every code point on its own (raqm rejects some controls, e.g. newline)
        font = ImageFont.truetype(str(path), GLYPH_PX, layout_engine=ImageFont.Layout.BASIC)
    except OSError as err:
        raise GrowlmError(f"cannot read font {path}: {err}; pass a Unifont .hex/.otf/.ttf ({INSTALL_HINT})") from None
    bits, width = _empty_table()
    wanted = [
        c
        for c in (range(BMP_SIZE) if codepoints is None else sorted(codepoints))
        if c < BMP_SIZE and not 0xD800 <= c <= 0xDFFF
    ]  # lone surrogates cannot be drawn
    canvas = Image.new("L", (GLYPH_PX, GLYPH_PX))
    draw = ImageDraw.Draw(canvas)
    for cp in wanted:
        ch = chr(cp)
        left = font.getbbox(ch)[0]
        # Zero-width combining marks ink over the previous cell (x < 0); move them back by one 8- or 16-px cell,
        # which is where Unifont's .hex draws them.
        shift = 0 if left >= 0 else 8 if left >= -8 else GLYPH_PX
        draw.rectangle((0, 0, GLYPH_PX, GLYPH_PX), fill=0)
        draw.text((shift, 0), ch, font=font, fill=255)
        ink = np.asarray(canvas) >= 128
        ink_right = int(np.flatnonzero(ink.any(axis=0)).max(initial=-1)) + 1
        bits[cp] = ink
        width[cp] = min(GLYPH_PX, max(round(font.getlength(ch)), shift, ink_right))
    return bits, width
