"""Reading a (possibly compressed) file as lines of text in bounded memory.

`lines(path, stats)` yields exactly `clean.decode_utf8(whole file)[0].splitlines()`: a leading BOM dropped,
undecodable bytes replaced by U+FFFD (counted in `stats.undecodable`), CRLF and CR turned into LF, then split
at every line boundary `str.splitlines` knows (including \\x0b, \\x0c, \\x1c-\\x1e, U+0085, U+2028, U+2029).
The file is read READ_BYTES at a time, so memory holds one block plus one line, whatever the file's size.
Files ending in .gz or .zst are decompressed on the fly (pyarrow's codecs).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from growlm.errors import GrowlmError

READ_BYTES = 1 << 22
BOM = b"\xef\xbb\xbf"
COMPRESSION = {".gz": "gzip", ".zst": "zstd"}
LINE_ENDS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


@dataclass
class ReadStats:
    undecodable: int = 0  # bytes that were not UTF-8, replaced by U+FFFD


def open_bytes(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when its name ends in .gz or .zst."""
    codec = COMPRESSION.get(path.suffix.lower())
    if codec is None:
        return open(path, "rb")
    return pa.input_stream(str(path), compression=codec)


def _blocks(raw: BinaryIO) -> Iterator[bytes]:
    """Blocks of bytes; the first holds at least the BOM's length unless the file is shorter."""
    first = b""
    while len(first) < len(BOM) and (block := raw.read(READ_BYTES)):
        first += block
    yield first.removeprefix(BOM)
    while block := raw.read(READ_BYTES):
        yield block


def decoded_blocks(raw: BinaryIO, stats: ReadStats) -> Iterator[str]:
    """Text blocks of the byte stream as decode_utf8 would give them, line ends normalised to LF."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    held_cr = ""  # a CR at the end of a block may start a CRLF
    for block in _blocks(raw):
        text, bad = _ESCAPED_BYTE.subn("\ufffd", decoder.decode(block))
        stats.undecodable += bad
        text = held_cr + text
        held_cr = "\r" if text.endswith("\r") else ""
        yield (text[:-1] if held_cr else text).replace("\r\n", "\n").replace("\r", "\n")
    text, bad = _ESCAPED_BYTE.subn("\ufffd", decoder.decode(b"", True))
    stats.undecodable += bad
    yield (held_cr + text).replace("\r\n", "\n").replace("\r", "\n")


def lines(path: Path, stats: ReadStats) -> Iterator[str]:
    tail = ""
    try:
        with open_bytes(path) as raw:
            for text in decoded_blocks(raw, stats):
                buf = tail + text
                if not buf:
                    continue
                found = buf.splitlines()
                tail = "" if buf[-1] in LINE_ENDS else found.pop()
                yield from found
    except OSError as err:  # pyarrow raises OSError for corrupt gzip / zstd data
        raise GrowlmError(f"{path} could not be read ({err}); check that it is intact") from None
    if tail:
        yield tail
