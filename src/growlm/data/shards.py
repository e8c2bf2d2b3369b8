"""The token shard folder written by `growlm data prepare`, and reading it back.

Layout of OUT/:
- manifest.json: format, tokenizer hash, dtype, EOS id, seed, validation fraction, and per source its name,
  package and version, weight, file sha256s, undecodable byte counts and per split token / character /
  document counts with the names of its files.
- NN-NAME.SPLIT.tokens.bin: the split's token ids as a flat little-endian uint16 array (ids < 65,536 = V), one
  document after another, each followed by EOS. Memory-mapped when read.
- NN-NAME.SPLIT.offsets.npy: int64, one more than the number of documents; document i is
  tokens[offsets[i] : offsets[i + 1] - 1] and its EOS is at offsets[i + 1] - 1.
- NN-NAME.SPLIT.docs.json: the documents' ids (source file, "#k" for the k-th document in a file).
- tokenizer/: the tokenizer the shards were made with (decontamination decodes with it).

Document boundaries come from the offsets, never from searching EOS (the tokenizer reads a literal "</s>" in a
text as characters, so only the EOS placed here carries that id; the offsets keep this robust either way).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from growlm.errors import GrowlmError
from growlm.tokenizer import BvvTokenizer, load_tokenizer

FORMAT = "growlm-shards-v1"
TOKEN_DTYPE = np.dtype("<u2")
SPLITS = ("train", "val")
MANIFEST = "manifest.json"
TOKENIZER_DIR = "tokenizer"


def split_files(stem: str, split: str) -> dict[str, str]:
    return {
        "tokens_file": f"{stem}.{split}.tokens.bin",
        "offsets_file": f"{stem}.{split}.offsets.npy",
        "ids_file": f"{stem}.{split}.docs.json",
    }


@dataclass(frozen=True)
class ShardSplit:
    """One source's documents in one split."""

    folder: Path
    source: str
    split: str
    info: dict

    @cached_property
    def tokens(self) -> np.ndarray:
        path = self.folder / self.info["tokens_file"]
        if self.info["tokens"] == 0:
            return np.zeros(0, dtype=TOKEN_DTYPE)
        size = path.stat().st_size if path.is_file() else None
        if size != self.info["tokens"] * TOKEN_DTYPE.itemsize:
            raise GrowlmError(
                f"{path} is {'missing' if size is None else f'{size:,} bytes'}, not the "
                f"{self.info['tokens']:,} tokens the manifest records (truncated or changed); "
                "prepare the shards again"
            )
        return np.memmap(path, dtype=TOKEN_DTYPE, mode="r", shape=(self.info["tokens"],))

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.load(self.folder / self.info["offsets_file"])

    @cached_property
    def doc_ids(self) -> list[str]:
        return json.loads((self.folder / self.info["ids_file"]).read_text(encoding="utf-8"))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def document(self, i: int) -> np.ndarray:
        """Token ids of document i, without its EOS."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1] - 1]


class ShardSet:
    """An opened shard folder; with `tokenizer_sha256` given, refuses shards made with another tokenizer."""

    def __init__(self, folder: str | Path, tokenizer_sha256: str | None = None):
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise GrowlmError(
                f"{self.folder} is not a shard folder (no {MANIFEST}); make one with `growlm data prepare`"
            )
        try:
            self.manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise GrowlmError(f"{path} is damaged ({type(err).__name__}); prepare the shards again") from None
        found = self.manifest.get("format") if isinstance(self.manifest, dict) else type(self.manifest).__name__
        if found != FORMAT:
            raise GrowlmError(f"{path}: format {found!r} is not {FORMAT!r}; prepare the shards again")
        if tokenizer_sha256 is not None and tokenizer_sha256 != self.tokenizer_sha256:
            raise GrowlmError(
                f"{self.folder} was made with tokenizer {self.tokenizer_sha256[:12]}, not "
                f"{tokenizer_sha256[:12]}; prepare the shards again with this tokenizer"
            )

    @property
    def tokenizer_sha256(self) -> str:
        return self.manifest["tokenizer_sha256"]

    @property
    def sources(self) -> list[dict]:
        return self.manifest["sources"]

    def split(self, source: dict, split: str) -> ShardSplit:
        if split not in SPLITS:
            raise GrowlmError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        return ShardSplit(self.folder, source["name"], split, source["splits"][split])

    def splits(self, split: str) -> list[ShardSplit]:
        return [self.split(s, split) for s in self.sources]

    def all_splits(self) -> Iterator[ShardSplit]:
        for split in SPLITS:
            yield from self.splits(split)

    def files(self) -> dict[str, str | None]:
        """Every file the splits read, by name in the folder, with the sha256 the manifest records for it (None in
        shards written before growlm recorded them)."""
        found = {}
        for source in self.sources:
            for entry in source["splits"].values():
                recorded = entry.get("sha256", {})
                for key in ("tokens_file", "offsets_file", "ids_file"):
                    found[entry[key]] = recorded.get(entry[key])
        return found

    def tokenizer(self) -> BvvTokenizer:
        tok = load_tokenizer(self.folder / TOKENIZER_DIR)
        if tok.sha256 != self.tokenizer_sha256:
            raise GrowlmError(
                f"{self.folder / TOKENIZER_DIR} does not match the manifest's tokenizer hash; prepare the shards again"
            )
        return tok
