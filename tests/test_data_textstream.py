import gzip
import random

import pyarrow as pa
import pytest

from growlm.data import textstream
from growlm.data.clean import decode_utf8
from growlm.data.textstream import ReadStats, lines
from growlm.errors import GrowlmError

PIECES = [
    b"abc",
    "é漢😀".encode(),
    b"\r\n",
    b"\r",
    b"\n",
    b"\xff",
    b"\xe2\x82",
    b"\xc3",
    b"\x0b",
    b"\x0c",
    b"\x1c",
    "\u2028".encode(),
    "\u0085".encode(),
    b"\xef\xbb\xbf",
    b" ",
    b"\n\n",
    b"\r\r\n",
]


def _random_bytes(rng):
    data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60)))
    return (b"\xef\xbb\xbf" if rng.random() < 0.3 else b"") + data


def _write(path, data):
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    elif path.suffix == ".zst":
        with pa.CompressedOutputStream(str(path), "zstd") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_streamed_lines_equal_whole_file_decoding_at_any_block_size(tmp_path, monkeypatch, suffix):
    """Blocks of 1-5 bytes split BOMs, CRLFs and multi-byte characters; the result must not change."""
    rng = random.Random(0)
    path = tmp_path / f"f{suffix}"
    for trial in range(150):
        data = _random_bytes(rng)
        _write(path, data)
        monkeypatch.setattr(textstream, "READ_BYTES", rng.randint(1, 5))
        stats = ReadStats()
        text, bad = decode_utf8(data)
        assert list(lines(path, stats)) == text.splitlines(), (trial, data)
        assert stats.undecodable == bad


def test_corrupt_compressed_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "x"}\n' * 100)[:-20] + b"garbage-garbage-garbage")
    with pytest.raises(GrowlmError, match="broken.jsonl.gz could not be read"):
        list(lines(path, ReadStats()))
