"""Content hashes (sha256, hex) of bytes, files and folders: what manifests record and inputs are checked by."""

from __future__ import annotations

import hashlib
from pathlib import Path

from growlm.io.ownership import MARK_FILE


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_dir(path: str | Path, names: list[str] | None = None) -> str:
    """Hash of a folder's files (relative names and contents), in sorted order."""
    path = Path(path)
    files = (
        [path / n for n in sorted(names)]
        if names is not None
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.name != MARK_FILE  # the mark describes the folder, not its content
        )
    )
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(path).as_posix().encode() + b"\0")
        h.update(sha256_file(p).encode() + b"\n")
    return h.hexdigest()
