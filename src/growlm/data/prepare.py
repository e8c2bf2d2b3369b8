"""Sources -> cleaned documents -> train/validation split -> token shards and manifest (layout: shards.py).

Split: deterministic and by document. Each document's key is sha256("SEED:DOCUMENT_ID"); in every source the
round(val_fraction * n) documents with the smallest keys go to validation (at least one, at most n - 1, when
the source has two or more documents and val_fraction > 0). The key leaves out the source name, so a page that
exists in several languages (same relative path) falls in the same split in each of them.

max_chars caps each source: validation keeps ceil(max_chars * val_fraction) characters of its documents and
training the rest, documents taken in file order, the last one cut at the cap.

Mixture weights (NAME:WEIGHT): a source's weight is its share of the training windows the loader samples
(TokenWindows draws the source of each window with these probabilities, then a window inside it), so over
training it is the source's share of training tokens, whatever the sources' sizes; a small source is repeated
and a large one subsampled. Without weights, every source weighs its number of training tokens (plain
concatenation). Weights are stored normalised to sum 1.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from growlm import __version__
from growlm.data.readers import Document
from growlm.data.shards import FORMAT, MANIFEST, TOKEN_DTYPE, TOKENIZER_DIR, split_files
from growlm.data.sources import Source, get_source, read_source
from growlm.errors import GrowlmError
from growlm.io import atomic_dir, atomic_write_json, check_output, sha256_file
from growlm.tokenizer import BvvTokenizer
from growlm.tokenizer.layout import EOS_ID

ENCODE_CHUNK_CHARS = 1 << 20


def parse_source_arg(arg: str) -> tuple[str, float | None]:
    """NAME or NAME:WEIGHT (the weight is the part after the last colon when it is a number)."""
    name, sep, tail = arg.rpartition(":")
    if sep:
        try:
            return name, float(tail)
        except ValueError:
            pass
    return arg, None


def _check_weights(weights: list[float | None]) -> None:
    given = [w for w in weights if w is not None]
    if given and len(given) != len(weights):
        raise GrowlmError("give a weight to every source (NAME:WEIGHT) or to none")
    if any(not math.isfinite(w) or w <= 0 for w in given):
        raise GrowlmError(f"source weights must be positive numbers, got {', '.join(map(str, given))}")


def split_documents(docs: list[Document], val_fraction: float, seed: int) -> tuple[list[Document], list[Document]]:
    """(train, val), each in the original order."""
    n = len(docs)
    n_val = round(val_fraction * n)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    keys = [hashlib.sha256(f"{seed}:{d.id}".encode("utf-8")).digest() for d in docs]
    val_index = set(sorted(range(n), key=keys.__getitem__)[:n_val])
    return ([d for i, d in enumerate(docs) if i not in val_index],
            [d for i, d in enumerate(docs) if i in val_index])


def cap_documents(docs: list[Document], max_chars: int) -> list[Document]:
    out, left = [], max_chars
    for d in docs:
        if left <= 0:
            break
        out.append(d if len(d.text) <= left else Document(d.id, d.text[:left]))
        left -= len(d.text)
    return out


def _chunks(docs: list[Document]):
    chunk, size = [], 0
    for d in docs:
        chunk.append(d)
        size += len(d.text)
        if size >= ENCODE_CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def write_split(docs: list[Document], tokenizer: BvvTokenizer, folder: Path, stem: str, split: str,
                bar: tqdm) -> dict:
    """Encode documents into the split's files; returns its manifest entry."""
    names = split_files(stem, split)
    offsets, total = [0], 0
    with open(folder / names["tokens_file"], "wb") as f:
        for chunk in _chunks(docs):
            encoded = tokenizer.encode_batch([d.text for d in chunk])
            flat = np.empty(sum(len(ids) + 1 for ids in encoded), dtype=TOKEN_DTYPE)
            pos = 0
            for ids in encoded:
                flat[pos: pos + len(ids)] = ids
                flat[pos + len(ids)] = EOS_ID
                pos += len(ids) + 1
                offsets.append(total + pos)
            f.write(flat.tobytes())
            total += len(flat)
            bar.update(sum(len(d.text) for d in chunk))
    np.save(folder / names["offsets_file"], np.asarray(offsets, dtype=np.int64))
    (folder / names["ids_file"]).write_text(json.dumps([d.id for d in docs], ensure_ascii=False), encoding="utf-8")
    return {**names, "tokens": total, "chars": sum(len(d.text) for d in docs), "documents": len(docs)}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-60:]


def _source_entry(source: Source, files: dict[str, str], undecodable: dict[str, int]) -> dict:
    return {
        "name": source.name,
        "language": source.language,
        "kind": "local" if source.package is None else "named",
        "package": source.package.label if source.package is not None else None,
        "version": source.version(),
        "files": {rel: sha256_file(path) for rel, path in files.items()},
        "undecodable_bytes": undecodable,
    }


def _prepare_source(source: Source, tokenizer: BvvTokenizer, folder: Path, stem: str, val_fraction: float,
                    seed: int, max_chars: int | None, progress: bool) -> dict:
    files = source.files()
    with tqdm(total=len(files), desc=f"read {source.name}", unit="file", disable=not progress, leave=False) as bar:
        text = read_source(source, files, bar.update)
    if not text.documents:
        raise GrowlmError(f"source {source.name} is empty after cleaning: {len(text.files)} files gave no text")
    if text.undecodable_bytes:
        total = sum(text.undecodable_bytes.values())
        print(f"warning: {source.name}: {total} undecodable bytes in {len(text.undecodable_bytes)} files "
              f"replaced by U+FFFD (listed in the manifest under undecodable_bytes)", file=sys.stderr)
    splits = dict(zip(("train", "val"), split_documents(text.documents, val_fraction, seed)))
    if max_chars is not None:
        val_chars = math.ceil(max_chars * val_fraction) if splits["val"] else 0
        splits = {"train": cap_documents(splits["train"], max_chars - val_chars),
                  "val": cap_documents(splits["val"], val_chars)}
    entry = _source_entry(source, text.files, text.undecodable_bytes)
    chars = sum(len(d.text) for docs in splits.values() for d in docs)
    with tqdm(total=chars, desc=f"tokenize {source.name}", unit="char", unit_scale=True, disable=not progress,
              leave=False) as bar:
        entry["splits"] = {s: write_split(docs, tokenizer, folder, stem, s, bar) for s, docs in splits.items()}
    return entry


def _totals(entries: list[dict]) -> dict:
    return {s: {k: sum(e["splits"][s][k] for e in entries) for k in ("tokens", "chars", "documents")}
            for s in ("train", "val")}


def prepare(sources: list[tuple[str, float | None]], tokenizer: BvvTokenizer, out: str | Path,
            val_fraction: float = 0.05, seed: int = 0, force: bool = False, max_chars: int | None = None,
            progress: bool = True) -> Path:
    """Write token shards for (source name or path, weight or None) pairs into `out`; returns `out`."""
    if not sources:
        raise GrowlmError("no sources given; name at least one (growlm data list)")
    if not 0 <= val_fraction < 1:
        raise GrowlmError(f"val fraction {val_fraction} is outside [0, 1)")
    if max_chars is not None and max_chars < 1:
        raise GrowlmError(f"max chars must be a positive number, got {max_chars}")
    if tokenizer.vocab_size > np.iinfo(TOKEN_DTYPE).max + 1:
        raise GrowlmError(f"tokenizer has {tokenizer.vocab_size} ids; uint16 shards hold at most 65,536")
    names = [n for n, _ in sources]
    if len(set(names)) != len(names):
        raise GrowlmError(f"a source is given twice: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    weights = [w for _, w in sources]
    _check_weights(weights)
    resolved = [get_source(n) for n in names]
    for s in resolved:
        s.files()  # fails early when a source is missing or is no training text
    out = check_output(out, force)

    with atomic_dir(out, force) as folder:
        tokenizer.save(folder / TOKENIZER_DIR)
        entries = [_prepare_source(s, tokenizer, folder, f"{i:02d}-{_slug(s.name)}", val_fraction, seed,
                                   max_chars, progress) for i, s in enumerate(resolved)]
        totals = _totals(entries)
        if val_fraction > 0 and totals["val"]["documents"] == 0:
            raise GrowlmError("the validation split is empty: every source is a single document; give sources "
                              "with more documents or pass --val-fraction 0")
        raw = weights if weights[0] is not None else [e["splits"]["train"]["tokens"] for e in entries]
        for e, w in zip(entries, raw):
            e["weight"] = w / sum(raw)
        atomic_write_json(folder / MANIFEST, {
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
        })
    return out
