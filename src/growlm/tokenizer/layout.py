"""The bvv vocabulary layout (V = 65,536): which id means what.

- Single characters keep their code point as id: 0x0000-0xD7FF and 0xF900-0xFFFE.
- 0xE000-0xE0FF: specials, the paper's 23 named ones first, then reserved fillers.
- n-grams fill 0xD800-0xDFFF, then 0xE100-0xF7FF, longest first (7,936 slots).
- 0xF800-0xF8FF: byte fallback, one id per UTF-8 byte, written <0xHH> as the `tokenizers` byte_fallback expects.
  Characters without an id of their own (planes above the BMP, emoji, private-use characters, U+FFFF) are
  encoded as their UTF-8 bytes, so encoding is lossless for every valid string and <unk> never appears.
  (The paper's layout gives n-grams 0xF800-0xF8FF too; growlm spends those 256 slots on the fallback.)
- Unused n-gram slots hold an unreachable placeholder piece.
"""

from __future__ import annotations

VOCAB_SIZE = 65536
LAYOUT_ID = "bvv65536-growlm-v1"

NAMED_SPECIALS = [
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "<think>",
    "</think>",
    "<emotions>",
    "</emotions>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "[INST]",
    "[/INST]",
    "[EOT]",
    "[USER]",
    "[ASSISTANT]",
    "[FIM_PREFIX]",
    "[FIM_MIDDLE]",
    "[FIM_SUFFIX]",
    "[FIM_PAD]",
    "[REPO_NAME]",
    "[FILE_SEP]",
]
SPECIAL_BASE = 0xE000
SPECIAL_COUNT = 256
SPECIAL_TOKENS = NAMED_SPECIALS + [f"<reserved_{i:02X}>" for i in range(len(NAMED_SPECIALS), SPECIAL_COUNT)]
PAD_ID, BOS_ID, EOS_ID, UNK_ID = SPECIAL_BASE, SPECIAL_BASE + 1, SPECIAL_BASE + 2, SPECIAL_BASE + 3

BYTE_BASE = 0xF800
NGRAM_SLOTS = [*range(0xD800, 0xE000), *range(0xE100, BYTE_BASE)]
MAX_NGRAM_LEN = 3


def is_char_id(i: int) -> bool:
    return 0 <= i <= 0xD7FF or 0xF900 <= i <= 0xFFFE


def is_special_id(i: int) -> bool:
    return SPECIAL_BASE <= i < SPECIAL_BASE + SPECIAL_COUNT


def is_byte_id(i: int) -> bool:
    return BYTE_BASE <= i < BYTE_BASE + 256


def is_ngram_slot(i: int) -> bool:
    return 0xD800 <= i <= 0xDFFF or 0xE100 <= i < BYTE_BASE


def byte_piece(b: int) -> str:
    return f"<0x{b:02X}>"


def placeholder_piece(i: int) -> str:
    return f"<unused_{i:04X}>"


def has_own_id(ch: str) -> bool:
    """True when a single character is its own token (otherwise it goes through the byte fallback)."""
    return is_char_id(ord(ch))
