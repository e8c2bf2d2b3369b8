"""Second pass of `prepare`: one source's spooled files (work.py) -> its train and validation shard files.

Memory: 24 bytes per document of the source (characters, tokens, key prefix) and the split's offsets; token ids
are copied from the spools to the shards in blocks of COPY_BYTES and no text is held. With a character cap,
phase 1 did not tokenize: `kept_jobs` names the phase-2 jobs that tokenize the kept documents, and
`use_kept_tokens` points the index at their spools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from growlm.data.shards import TOKEN_DTYPE, split_files
from growlm.data.split import cap, key_prefixes, n_validation, validation_mask
from growlm.data.work import Job, Task
from growlm.io.hashing import sha256_file

COPY_BYTES = 16 << 20


@dataclass
class SourceIndex:
    """Per-document numbers of one source, in reading order across its files."""

    tasks: list[Task]
    spools: list[Path]  # phase 1 folders
    token_spools: list[Path]  # the folders whose tokens.bin the shards copy from
    starts: np.ndarray  # int64 [files + 1]: the first document of each file
    chars: np.ndarray  # int64 [documents]
    tokens: np.ndarray  # int64 [documents], EOS included
    prefixes: np.ndarray  # uint64 [documents]

    def locate(self, i: int) -> tuple[int, int]:
        """(file, document within the file) of document i."""
        f = int(np.searchsorted(self.starts, i, side="right")) - 1
        return f, i - int(self.starts[f])

    def full_key(self, i: int) -> bytes:
        f, k = self.locate(i)
        return np.load(self.spools[f] / "keys.npy", mmap_mode="r")[k].tobytes()


def load_index(tasks: list[Task], work: Path) -> SourceIndex:
    spools = [work / t.name for t in tasks]
    sizes = [np.load(s / "docs.npy") for s in spools]
    prefixes = [key_prefixes(np.load(s / "keys.npy", mmap_mode="r")) for s in spools]
    sizes_all = np.concatenate(sizes) if sizes else np.zeros((0, 2), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in sizes])]).astype(np.int64)
    return SourceIndex(
        tasks,
        spools,
        list(spools),
        starts,
        sizes_all[:, 0].copy(),
        sizes_all[:, 1].copy(),
        np.concatenate(prefixes) if prefixes else np.zeros(0, dtype=np.uint64),
    )


@dataclass
class Selection:
    """The documents of one split (mask over the source's documents) and the cut of its last one, if any."""

    mask: np.ndarray
    cut: tuple[int, int] | None = None  # (document, characters kept)


def select(index: SourceIndex, val_fraction: float, max_chars: int | None) -> dict[str, Selection]:
    """The train/validation split (split.py) and the per-split character caps of prepare's docstring."""
    val = validation_mask(index.prefixes, n_validation(len(index.chars), val_fraction), index.full_key)
    limits = {"train": None, "val": None}
    if max_chars is not None:
        val_chars = math.ceil(max_chars * val_fraction) if val.any() else 0
        limits = {"train": max_chars - val_chars, "val": val_chars}
    out = {}
    for split, mask in (("train", ~val), ("val", val)):
        members = np.flatnonzero(mask)
        taken, kept = cap(index.chars[members], limits[split])
        mask = np.zeros_like(mask)
        mask[members[:taken]] = True
        out[split] = Selection(mask, None if kept is None else (int(members[taken - 1]), kept))
    return out


def _copy(src: BinaryIO, dst: BinaryIO, start: int, end: int) -> None:
    src.seek(start)
    while start < end:
        block = src.read(min(COPY_BYTES, end - start))
        dst.write(block)
        start += len(block)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def kept_jobs(index: SourceIndex, selections: dict[str, Selection]) -> list[Job]:
    """Phase-2 jobs: per file with kept documents, their positions and cuts."""
    keep = np.zeros(len(index.chars), dtype=bool)
    cuts = {}
    for sel in selections.values():
        keep |= sel.mask
        if sel.cut is not None:
            cuts[sel.cut[0]] = sel.cut[1]
    jobs = []
    for f, task in enumerate(index.tasks):
        lo, hi = int(index.starts[f]), int(index.starts[f + 1])
        if keep[lo:hi].any():
            jobs.append(
                Job(
                    task,
                    keep=tuple(np.flatnonzero(keep[lo:hi]).tolist()),
                    cuts=tuple((i - lo, c) for i, c in sorted(cuts.items()) if lo <= i < hi),
                )
            )
    return jobs


def use_kept_tokens(index: SourceIndex, work: Path) -> None:
    """Token counts and token files from the phase-2 spools (documents of files without one count 0)."""
    counts = []
    for f, task in enumerate(index.tasks):
        folder = work / f"{task.name}.tok"
        n = int(index.starts[f + 1] - index.starts[f])
        counts.append(np.load(folder / "tokens.npy") if folder.is_dir() else np.zeros(n, dtype=np.int64))
        index.token_spools[f] = folder
    index.tokens = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)


def _write_tokens(index: SourceIndex, mask: np.ndarray, path: Path) -> None:
    with open(path, "wb") as out:
        for f, spool in enumerate(index.token_spools):
            lo, hi = index.starts[f], index.starts[f + 1]
            if not mask[lo:hi].any():
                continue
            ends = np.concatenate([[0], np.cumsum(index.tokens[lo:hi])]) * TOKEN_DTYPE.itemsize
            with open(spool / "tokens.bin", "rb") as src:
                for a, b in _runs(mask[lo:hi]):
                    _copy(src, out, int(ends[a]), int(ends[b]))


def _write_ids(index: SourceIndex, mask: np.ndarray, path: Path) -> None:
    """docs.json exactly as json.dumps(ids, ensure_ascii=False) writes it, one id at a time."""
    first = True
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("[")
        for f, spool in enumerate(index.spools):
            lo, hi = index.starts[f], index.starts[f + 1]
            if not mask[lo:hi].any():
                continue
            with open(spool / "ids.jsonl", encoding="utf-8", newline="\n") as ids:
                for take, line in zip(mask[lo:hi], ids):
                    if take:
                        out.write(("" if first else ", ") + line[:-1])
                        first = False
        out.write("]")


def write_split(index: SourceIndex, sel: Selection, folder: Path, stem: str, split: str) -> dict:
    """The split's three files (shards.py); returns its manifest entry."""
    names = split_files(stem, split)
    _write_tokens(index, sel.mask, folder / names["tokens_file"])
    counts = index.tokens[sel.mask]
    np.save(folder / names["offsets_file"], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    _write_ids(index, sel.mask, folder / names["ids_file"])
    chars = int(index.chars[sel.mask].sum())
    if sel.cut is not None:
        chars += sel.cut[1] - int(index.chars[sel.cut[0]])
    hashes = {name: sha256_file(folder / name) for name in names.values()}  # what a resumed run checks
    return {**names, "tokens": int(counts.sum()), "chars": chars, "documents": int(sel.mask.sum()), "sha256": hashes}
