"""Which writing system a character belongs to, for per-script n-gram mining.

Python has no Unicode Script property, so the script is read from the character's name: its first word is the
script for every letter block ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "DEVANAGARI", "HANGUL", "HIRAGANA", ...);
the CJK ideograph blocks ("CJK UNIFIED IDEOGRAPH-4E2D", "CJK COMPATIBILITY IDEOGRAPH-F900") are "HAN".
Combining marks continue the run they follow, so Devanagari vowel signs or Cyrillic accents stay in the word.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterator

_WORD = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1 << 16)
def script_of(ch: str) -> str | None:
    """Script of a letter or mark; None for anything else (digits, punctuation, spaces, symbols)."""
    cat = unicodedata.category(ch)
    if cat[0] == "M":
        return "MARK"
    if cat[0] != "L":
        return None
    name = unicodedata.name(ch, "")
    if name.startswith("CJK"):
        return "HAN"
    return name.split(" ", 1)[0] or "UNKNOWN"


def script_runs(text: str) -> Iterator[tuple[str, str]]:
    """Yield (script, run): maximal runs of letters (with their marks) of one script."""
    for match in _WORD.finditer(text):
        word = match.group()
        start, current = 0, None
        for i, ch in enumerate(word):
            script = script_of(ch)
            if script == "MARK" or script is None:
                continue
            if current is None:
                current = script
            elif script != current:
                yield current, word[start:i]
                start, current = i, script
        if current is not None:
            yield current, word[start:]
