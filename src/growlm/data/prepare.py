"""Sources -> cleaned documents -> train/validation split -> token shards and manifest (layout: shards.py).

Streamed, so memory does not grow with the corpus (a few dozen bytes per document, never the texts):
1. work.py, pool.py: every file of every source is read (a batch of records at a time), cleaned and tokenized by
   one of `workers` processes into a spool; resumable after a kill (finished files are kept in OUT's hidden
   sibling .NAME.prepare/ and not redone), and the same for any number of workers. With max_chars the files are
   only indexed here, and once the split and the caps are chosen, only the kept documents are tokenized.
2. assemble.py: per source, the split and the cap below are decided from per-document numbers (split.py) and the
   spooled token ids are copied into the shard files.
The output is byte for byte what the earlier in-memory implementation wrote (tests/test_data_prepare_scale.py
holds the hashes).

Split (split.py): deterministic and by document. Each document's key is sha256("SEED:DOCUMENT_ID"); in every
source the round(val_fraction * n) documents with the smallest keys go to validation (at least one, at most
n - 1, when the source has two or more documents and val_fraction > 0). The key leaves out the source name, so a
page that exists in several languages (same relative path) falls in the same split in each of them.

max_chars caps each source: validation keeps ceil(max_chars * val_fraction) characters of its documents and
training the rest, documents taken in file order, the last one cut at the cap.

Mixture weights (NAME:WEIGHT, parsed by mix.py): a source's weight is its share of the training windows the
loader samples (TokenWindows draws the source of each window with these probabilities, then a window inside it),
so over training it is the source's share of training tokens, whatever the sources' sizes; a small source is
repeated and a large one subsampled. Without weights, every source weighs its number of training tokens (plain
concatenation). Weights are stored normalised to sum 1.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from growlm import __version__
from growlm.data.assemble import (
    Selection,
    SourceIndex,
    kept_jobs,
    load_index,
    select,
    use_kept_tokens,
    write_split,
)
from growlm.data.mix import Weighted, check_weights
from growlm.data.pool import run_jobs
from growlm.data.readers import Document
from growlm.data.shards import FORMAT, MANIFEST, TOKEN_DTYPE, TOKENIZER_DIR
from growlm.data.sources import Source, get_source
from growlm.data.split import split_by_keys
from growlm.data.work import Job, Task, finished_info, make_tasks, open_work
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.outputs import atomic_dir, check_output
from growlm.tokenizer import BvvTokenizer
from growlm.tokenizer.layout import EOS_ID


def split_documents(docs: list[Document], val_fraction: float, seed: int) -> tuple[list[Document], list[Document]]:
    """(train, val), each in the original order."""
    val = split_by_keys([d.id for d in docs], val_fraction, seed)
    return [d for d, v in zip(docs, val) if not v], [d for d, v in zip(docs, val) if v]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-60:]


def _source_entry(source: Source, infos: list[dict]) -> dict:
    return {
        "name": source.name,
        "language": source.language,
        "kind": "local" if source.package is None else "named",
        "package": source.package.label if source.package is not None else None,
        "version": source.version(),
        "files": {i["rel"]: i["sha256"] for i in infos},
        "undecodable_bytes": {i["rel"]: i["undecodable"] for i in infos if i["undecodable"]},
    }


def _check_source(source: Source, infos: list[dict]) -> None:
    if not sum(i["documents"] for i in infos):
        raise GrowlmError(f"source {source.name} is empty after cleaning: {len(infos)} files gave no text")
    bad = {i["rel"]: i["undecodable"] for i in infos if i["undecodable"]}
    if bad:
        print(
            f"growlm: warning: {source.name}: {sum(bad.values())} undecodable bytes in {len(bad)} files "
            f"replaced by U+FFFD (listed in the manifest under undecodable_bytes)",
            file=sys.stderr,
        )


def _spool(
    tasks: list[list[Task]],
    tokenizer: BvvTokenizer,
    seed: int,
    work: Path,
    val_fraction: float,
    max_chars: int | None,
    workers: int | None,
    progress: bool,
) -> list[tuple[SourceIndex, dict]]:
    """Per source: its per-document index and its train/val selections, every kept document tokenized."""
    jobs = [Job(t, tokenize=max_chars is None) for ts in tasks for t in ts]
    infos = run_jobs(jobs, tokenizer, seed, work, workers, progress, "read" if max_chars else "read+tokenize")
    for ts in tasks:
        _check_source(get_source(ts[0].source), [infos[t.name] for t in ts])
    indexes = [load_index(ts, work) for ts in tasks]
    selections = [select(index, val_fraction, max_chars) for index in indexes]
    if max_chars is not None:
        kept = [j for index, sel in zip(indexes, selections) for j in kept_jobs(index, sel)]
        run_jobs(kept, tokenizer, seed, work, workers, progress, "tokenize kept")
        for index in indexes:
            use_kept_tokens(index, work)
    return list(zip(indexes, selections))


def _entry(
    source: Source, index: SourceIndex, selections: dict[str, Selection], work: Path, folder: Path, stem: str
) -> dict:
    infos = [finished_info(work, t) for t in index.tasks]
    return {
        **_source_entry(source, infos),
        "splits": {split: write_split(index, sel, folder, stem, split) for split, sel in selections.items()},
    }


def _totals(entries: list[dict]) -> dict:
    return {
        s: {k: sum(e["splits"][s][k] for e in entries) for k in ("tokens", "chars", "documents")}
        for s in ("train", "val")
    }


def _check_arguments(
    sources: list[Weighted], tokenizer: BvvTokenizer, val_fraction: float, max_chars: int | None, workers: int | None
) -> None:
    if not sources:
        raise GrowlmError("no sources given; name at least one (growlm data list)")
    if not 0 <= val_fraction < 1:
        raise GrowlmError(f"val fraction {val_fraction} is outside [0, 1)")
    if max_chars is not None and max_chars < 1:
        raise GrowlmError(f"max chars must be a positive number, got {max_chars}")
    if workers is not None and workers < 1:
        raise GrowlmError(f"workers must be at least 1, got {workers}")
    if tokenizer.vocab_size > np.iinfo(TOKEN_DTYPE).max + 1:
        raise GrowlmError(f"tokenizer has {tokenizer.vocab_size} ids; uint16 shards hold at most 65,536")
    names = [n for n, _ in sources]
    if len(set(names)) != len(names):
        raise GrowlmError(f"a source is given twice: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    check_weights([w for _, w in sources], "sources")


def _manifest(
    tokenizer: BvvTokenizer,
    seed: int,
    val_fraction: float,
    max_chars: int | None,
    weights: list[float | None],
    entries: list[dict],
) -> dict:
    totals = _totals(entries)
    if val_fraction > 0 and totals["val"]["documents"] == 0:
        raise GrowlmError(
            "the validation split is empty: every source is a single document; give sources "
            "with more documents or pass `val_fraction` 0"
        )
    raw = weights if weights[0] is not None else [e["splits"]["train"]["tokens"] for e in entries]
    for e, w in zip(entries, raw):
        e["weight"] = w / sum(raw)
    return {
        "format": FORMAT,
        "created_by": f"growlm {__version__}",
        "dtype": "uint16",
        "eos_id": EOS_ID,
        "vocab_size": tokenizer.vocab_size,
        "tokenizer_sha256": tokenizer.sha256,
        "seed": seed,
        "val_fraction": val_fraction,
        "max_chars": max_chars,
        "weights_given": weights[0] is not None,
        "sources": entries,
        "splits": totals,
    }


def prepare(
    sources: list[Weighted],
    tokenizer: BvvTokenizer,
    out: str | Path,
    val_fraction: float = 0.05,
    seed: int = 0,
    force: bool = False,
    max_chars: int | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Write token shards for (source name or path, weight or None) pairs (mix.parse_sources) into `out`;
    returns `out`. `workers`: processes that read and tokenize (default: all cores, fewer for small inputs)."""
    _check_arguments(sources, tokenizer, val_fraction, max_chars, workers)
    resolved = [get_source(n) for n, _ in sources]
    tasks = [make_tasks(i, s.name, s.files()) for i, s in enumerate(resolved)]  # fails early on a bad source
    out = check_output(out, force)
    work = open_work(
        out,
        {
            "tokenizer_sha256": tokenizer.sha256,
            "seed": seed,
            "sources": [n for n, _ in sources],
            "val_fraction": val_fraction,
            "max_chars": max_chars,
        },
    )
    spooled = _spool(tasks, tokenizer, seed, work, val_fraction, max_chars, workers, progress)
    with atomic_dir(out, force, kind="shards folder") as folder:
        tokenizer.save(folder / TOKENIZER_DIR)
        entries = [
            _entry(s, index, sel, work, folder, f"{i:02d}-{_slug(s.name)}")
            for i, (s, (index, sel)) in enumerate(zip(resolved, spooled))
        ]
        atomic_write_json(
            folder / MANIFEST, _manifest(tokenizer, seed, val_fraction, max_chars, [w for _, w in sources], entries)
        )
    shutil.rmtree(work, ignore_errors=True)
    return out
