"""The spools of `prepare`: each input file read, cleaned and (unless a cap must be chosen first) tokenized by one
worker (pool.py) into a folder under the work folder (OUT's hidden sibling .NAME.prepare/).

WORK/run.json: what the spools depend on (tokenizer, seed, sources, split and cap); other inputs' work is dropped.
WORK/SS-FFFFFFF/: file FFFFFFF of source SS (phase 1), renamed into place only when complete:
    tokens.bin  its documents' token ids, each followed by EOS (the shard layout, shards.py); empty with a cap
    docs.npy    int64 [n, 2]: characters and tokens (EOS included; 0 with a cap) of each document
    keys.npy    uint8 [n, 32]: each document's split key (split.split_key)
    ids.jsonl   each document's id, JSON-encoded, one a line
    task.json   the file's path, size and mtime (a changed file is redone), sha256, undecodable bytes
WORK/SS-FFFFFFF.tok/ (phase 2, only with a character cap): once the split and the caps are chosen from phase 1's
    numbers, only the kept documents of the files that have some are tokenized, the cut ones cut first:
    tokens.bin as above and tokens.npy, int64 [n] (0 for a document not kept).

A file's spool is a function of the file alone, so the number of workers changes only the speed. Memory: a
worker holds one batch of ENCODE_CHUNK_CHARS characters plus 16 bytes per document of its file.
"""

from __future__ import annotations

import json
import os
import shutil
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from growlm.data.readers import Document
from growlm.data.shards import TOKEN_DTYPE
from growlm.data.sources import get_source
from growlm.data.split import KEY_BYTES, split_key
from growlm.data.textstream import ReadStats
from growlm.io.atomic import atomic_write_json
from growlm.io.hashing import sha256_file
from growlm.tokenizer import BvvTokenizer
from growlm.tokenizer.layout import EOS_ID

ENCODE_CHUNK_CHARS = 1 << 16  # characters per encode_batch call: larger batches only cost memory
WORK_FORMAT = "growlm-prepare-work-v1"


@dataclass(frozen=True)
class Task:
    """One input file of one source."""

    source: str  # the source's name or PATH[#FIELD], as get_source takes it
    number: int  # the source's position
    index: int  # the file's position in the source
    path: str
    rel: str
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return f"{self.number:02d}-{self.index:07d}"


@dataclass(frozen=True)
class Job:
    """Phase 1 (keep None): index a file, tokenizing it when `tokenize`. Phase 2: tokenize the documents at
    positions `keep` (ascending), those in `cuts` (position -> characters kept) cut first."""

    task: Task
    tokenize: bool = True
    keep: tuple[int, ...] | None = None
    cuts: tuple[tuple[int, int], ...] = ()

    @property
    def folder(self) -> str:
        return self.task.name if self.keep is None else f"{self.task.name}.tok"


def make_tasks(number: int, source: str, files: list[tuple[Path, str]]) -> list[Task]:
    tasks = []
    for index, (path, rel) in enumerate(files):
        st = path.stat()
        tasks.append(Task(source, number, index, str(path), rel, st.st_size, st.st_mtime_ns))
    return tasks


def work_folder(out: Path) -> Path:
    return out.with_name(f".{out.name}.prepare")


def open_work(out: Path, stamp: dict) -> Path:
    """The work folder for inputs described by `stamp`: kept from an earlier run of the same, else made afresh."""
    work = work_folder(out)
    stamp = {"format": WORK_FORMAT, **stamp}
    run_file = work / "run.json"
    if work.exists() and _stamp(run_file) != stamp:  # another command's work, or damaged: start afresh
        shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        atomic_write_json(run_file, stamp)
    return work


def _stamp(run_file: Path) -> dict | None:
    try:
        return json.loads(run_file.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def encode_chunk(tokenizer: BvvTokenizer, chunk: list[Document]) -> tuple[np.ndarray, list[int]]:
    """The documents' ids, each followed by EOS, as one flat array; and each document's length in it."""
    encoded = tokenizer.encode_batch([d.text for d in chunk])
    flat = np.empty(sum(len(ids) + 1 for ids in encoded), dtype=TOKEN_DTYPE)
    pos = 0
    for ids in encoded:
        flat[pos : pos + len(ids)] = ids
        flat[pos + len(ids)] = EOS_ID
        pos += len(ids) + 1
    return flat, [len(ids) + 1 for ids in encoded]


def _chunks(docs: Iterator[Document]) -> Iterator[list[Document]]:
    chunk, size = [], 0
    for d in docs:
        chunk.append(d)
        size += len(d.text)
        if size >= ENCODE_CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _tokenized(docs: Iterator[Document], tokenizer: BvvTokenizer, path: Path) -> Iterator[tuple[Document, int]]:
    """Each document with its token count (EOS included), its tokens appended to `path`."""
    with open(path, "wb") as f:
        for chunk in _chunks(docs):
            flat, lengths = encode_chunk(tokenizer, chunk)
            f.write(flat.tobytes())
            yield from zip(chunk, lengths)


def _index_file(job: Job, tokenizer: BvvTokenizer, seed: int, tmp: Path) -> dict:
    task, stats = job.task, ReadStats()
    docs = get_source(task.source).read(Path(task.path), task.rel, stats)
    if job.tokenize:
        counted = _tokenized(docs, tokenizer, tmp / "tokens.bin")
    else:
        (tmp / "tokens.bin").write_bytes(b"")
        counted = ((d, 0) for d in docs)
    sizes, keys = array("q"), bytearray()
    with open(tmp / "ids.jsonl", "w", encoding="utf-8", newline="\n") as ids:
        for d, n in counted:
            sizes.extend((len(d.text), n))
            keys += split_key(seed, d.id)
            ids.write(json.dumps(d.id, ensure_ascii=False) + "\n")
    np.save(tmp / "docs.npy", np.frombuffer(sizes, dtype=np.int64).reshape(-1, 2))
    np.save(tmp / "keys.npy", np.frombuffer(bytes(keys), dtype=np.uint8).reshape(-1, KEY_BYTES))
    return {
        **asdict(task),
        "sha256": sha256_file(task.path),
        "undecodable": stats.undecodable,
        "documents": len(sizes) // 2,
    }


def _tokenize_kept(job: Job, tokenizer: BvvTokenizer, work: Path, tmp: Path) -> dict:
    task, keep, cuts = job.task, set(job.keep), dict(job.cuts)
    docs = get_source(task.source).read(Path(task.path), task.rel, ReadStats())
    kept = (d._replace(text=d.text[: cuts[k]]) if k in cuts else d for k, d in enumerate(docs) if k in keep)
    counts = np.zeros(len(np.load(work / task.name / "docs.npy")), dtype=np.int64)
    counts[list(job.keep)] = [n for _, n in _tokenized(kept, tokenizer, tmp / "tokens.bin")]
    np.save(tmp / "tokens.npy", counts)
    return {**asdict(task), "kept": len(keep)}


def spool(job: Job, tokenizer: BvvTokenizer, seed: int, work: Path) -> dict:
    """Run one job into WORK/job.folder (moved into place when complete); returns its task.json."""
    tmp = work / f"{job.folder}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if job.keep is None:
        info = _index_file(job, tokenizer, seed, tmp)
    else:
        info = _tokenize_kept(job, tokenizer, work, tmp)
    atomic_write_json(tmp / "task.json", info)
    shutil.rmtree(work / job.folder, ignore_errors=True)
    os.replace(tmp, work / job.folder)
    return info


def finished(work: Path, job: Job) -> dict | None:
    path = work / job.folder / "task.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    return info if all(info.get(k) == v for k, v in asdict(job.task).items()) else None


def finished_info(work: Path, task: Task) -> dict:
    return json.loads((work / task.name / "task.json").read_text(encoding="utf-8"))
