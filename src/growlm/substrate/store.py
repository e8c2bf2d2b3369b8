"""A substrate on disk: DIR/substrate.safetensors (tensor "embedding", V x d float32) + DIR/manifest.json.

The manifest holds the kind, every build parameter, the vocabulary layout id and "sha256", the hash of the matrix
bytes (float32 little-endian, row-major); it has no timestamps, so equal specs give byte-identical folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.hashing import sha256_bytes
from growlm.io.outputs import atomic_dir

FORMAT = "growlm-substrate-v1"
MATRIX_FILE = "substrate.safetensors"
MANIFEST_FILE = "manifest.json"
TENSOR = "embedding"


def matrix_sha256(matrix: np.ndarray | torch.Tensor) -> str:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    return sha256_bytes(np.ascontiguousarray(matrix, dtype="<f4").tobytes())


@dataclass
class Substrate:
    matrix: torch.Tensor  # (V, d) float32
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def save(self, out: str | Path, force: bool = False) -> Path:
        """Write the folder atomically; refuses an existing non-empty `out` unless force."""
        with atomic_dir(out, force, kind="substrate folder") as tmp:
            save_file({TENSOR: self.matrix.contiguous()}, str(tmp / MATRIX_FILE))
            atomic_write_json(tmp / MANIFEST_FILE, self.manifest)
        return Path(out)


def make_substrate(matrix: np.ndarray, kind: str, params: dict[str, Any], layout: str) -> Substrate:
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "vocab_size": matrix.shape[0],
        "dim": matrix.shape[1],
        "layout": layout,
        "params": params,
        "sha256": matrix_sha256(matrix),
    }
    return Substrate(torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)), manifest)


def load_substrate(path: str | Path) -> Substrate:
    """Read a substrate folder, checking that the matrix matches its manifest."""
    path = Path(path)
    manifest_file, matrix_file = path / MANIFEST_FILE, path / MATRIX_FILE
    if not manifest_file.is_file() or not matrix_file.is_file():
        raise GrowlmError(
            f"{path} is not a substrate folder (needs {MANIFEST_FILE} and {MATRIX_FILE}); "
            "build one with `growlm substrate build`"
        )
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        matrix = load_file(str(matrix_file))[TENSOR]
    except (json.JSONDecodeError, SafetensorError, KeyError) as err:
        raise GrowlmError(f"{path}: unreadable substrate ({err}); rebuild it with `growlm substrate build`") from None
    if manifest.get("format") != FORMAT:
        raise GrowlmError(f"{manifest_file}: format {manifest.get('format')!r} is not {FORMAT!r}; rebuild it")
    expected = (manifest["vocab_size"], manifest["dim"])
    if tuple(matrix.shape) != expected or matrix.dtype != torch.float32:
        raise GrowlmError(
            f"{matrix_file}: {tuple(matrix.shape)} {matrix.dtype} does not match the manifest's "
            f"{expected} float32; rebuild it"
        )
    if matrix_sha256(matrix) != manifest["sha256"]:
        raise GrowlmError(f"{matrix_file}: content hash differs from {manifest_file}; the file was changed, rebuild it")
    return Substrate(matrix, manifest)
