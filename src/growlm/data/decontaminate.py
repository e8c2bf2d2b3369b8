"""n-gram overlap (default 13) between training documents and evaluation items; dropping overlapping documents.

Normalised words: the text is NFKC-normalised and case-folded; a word is a maximal run of letters and digits
(punctuation, underscores and whitespace separate words and are dropped), except that every CJK ideograph, kana,
bopomofo or hangul syllable is a word of its own, since those scripts do not put spaces between words.
An n-gram is n consecutive normalised words. A document overlaps an item when they share an n-gram; an item with
fewer than n words overlaps a document that contains all of its words in order (exact match); an item of fewer
than MIN_EXACT words is too generic to check ("the answer is no") and is counted as too short. Documents are decoded
from the shards with the
tokenizer stored next to them, so what is checked is exactly what training sees.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from growlm.data.shards import MANIFEST, TOKENIZER_DIR, ShardSet, ShardSplit
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json
from growlm.io.hashing import sha256_bytes
from growlm.io.outputs import atomic_dir, check_replaceable

DEFAULT_N = 13
MIN_EXACT = 5
DECODE_CHUNK = 512
_CJK = "\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff"
_WORD = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")


def normalized_words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def _ngrams(words: list[str], n: int):
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


class ItemIndex:
    """Which items contain each n-gram."""

    def __init__(self, texts: list[str], n: int = DEFAULT_N, exact: bool = True):
        """exact=False: items under n words are not checked at all (counted as too short)."""
        if n < 1:
            raise GrowlmError(f"n-gram length must be >= 1, got {n}")
        self.n, self.items = n, len(texts)
        self.too_short = self.matched_whole = 0
        self._items_of: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._lengths: set[int] = {n}  # n, and the length of every item matched whole
        for i, text in enumerate(texts):
            words = normalized_words(text)
            if len(words) < (min(n, MIN_EXACT) if exact else n):
                self.too_short += 1
                continue
            if len(words) < n:
                self.matched_whole += 1
                self._lengths.add(len(words))
            for gram in set(_ngrams(words, min(n, len(words)))):
                self._items_of[gram].append(i)

    def match(self, text: str) -> tuple[list[int], str | None]:
        """(items sharing an n-gram with text or contained whole in it, the first shared sequence)."""
        items, first, words = set(), None, normalized_words(text)
        for length in sorted(self._lengths):
            for gram in _ngrams(words, length):
                hit = self._items_of.get(gram)
                if hit:
                    items.update(hit)
                    first = first or " ".join(gram)
        return sorted(items), first


@dataclass
class Overlap:
    source: str
    split: str
    doc_index: int
    doc_id: str
    chars: int
    items: list[int]
    ngram: str  # the first shared n-gram, in normalised words


@dataclass
class OverlapReport:
    n: int
    items: int
    items_too_short: int  # under MIN_EXACT words: not checked
    items_exact: int = 0  # under n words: matched whole
    documents_checked: int = 0
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def contaminated_items(self) -> list[int]:
        return sorted({i for o in self.overlaps for i in o.items})

    def to_json(self) -> dict:
        return {
            "format": "growlm-decontamination-v1",
            "n": self.n,
            "items": self.items,
            "items_too_short": self.items_too_short,
            "items_exact": self.items_exact,
            "documents_checked": self.documents_checked,
            "contaminated_items": self.contaminated_items,
            "overlaps": [vars(o) for o in self.overlaps],
        }


def _decoded(part: ShardSplit, tokenizer):
    for start in range(0, len(part), DECODE_CHUNK):
        stop = min(start + DECODE_CHUNK, len(part))
        texts = tokenizer.hf.decode_batch(
            [part.document(i).tolist() for i in range(start, stop)], skip_special_tokens=False
        )
        yield from zip(range(start, stop), texts)


def find_overlaps(shard_dir: str | Path, texts: list[str], n: int = DEFAULT_N, progress: bool = True) -> OverlapReport:
    """Every training and validation document that shares an n-gram with one of `texts`."""
    shards = ShardSet(shard_dir)
    tokenizer = shards.tokenizer()
    index = ItemIndex(list(texts), n)
    report = OverlapReport(n, index.items, index.too_short, index.matched_whole)
    parts = list(shards.all_splits())
    with tqdm(total=sum(len(p) for p in parts), desc="decontaminate", unit="doc", disable=not progress) as bar:
        for part in parts:
            for i, text in _decoded(part, tokenizer):
                items, gram = index.match(text)
                if items:
                    report.overlaps.append(Overlap(part.source, part.split, i, part.doc_ids[i], len(text), items, gram))
                bar.update(1)
            report.documents_checked += len(part)
    return report


def _write_kept(part: ShardSplit, drop: set[int], folder: Path, info: dict) -> dict:
    keep = [i for i in range(len(part)) if i not in drop]
    offsets = part.offsets
    pieces = [part.tokens[offsets[i] : offsets[i + 1]] for i in keep]
    tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype=part.tokens.dtype)
    (folder / info["tokens_file"]).write_bytes(tokens.tobytes())
    lengths = np.array([offsets[i + 1] - offsets[i] for i in keep], dtype=np.int64)
    np.save(folder / info["offsets_file"], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    ids = part.doc_ids
    (folder / info["ids_file"]).write_text(json.dumps([ids[i] for i in keep], ensure_ascii=False), encoding="utf-8")
    return {**info, "tokens": int(tokens.size), "documents": len(keep)}


def drop_overlapping(
    shard_dir: str | Path,
    texts: list[str],
    out: str | Path,
    n: int = DEFAULT_N,
    force: bool = False,
    progress: bool = True,
) -> OverlapReport:
    """Copy the shard folder to `out` without the documents that overlap `texts`; returns the report."""
    check_replaceable(out, force)
    if Path(out).resolve() == Path(shard_dir).resolve():
        raise GrowlmError(f"`out` {out} is the shard folder itself; write the decontaminated shards elsewhere")
    texts = list(texts)
    report = find_overlaps(shard_dir, texts, n, progress)
    shards = ShardSet(shard_dir)
    dropped: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for o in report.overlaps:
        dropped[(o.source, o.split)][o.doc_index] = o.chars
    manifest = copy.deepcopy(shards.manifest)
    with atomic_dir(out, force, kind="shards folder") as folder:
        shards.tokenizer().save(folder / TOKENIZER_DIR)
        for source in manifest["sources"]:
            for split, info in source["splits"].items():
                gone = dropped.get((source["name"], split), {})
                new = _write_kept(shards.split(source, split), set(gone), folder, info)
                source["splits"][split] = {**new, "chars": info["chars"] - sum(gone.values())}
        for split, totals in manifest["splits"].items():
            for key in totals:
                totals[key] = sum(s["splits"][split][key] for s in manifest["sources"])
        manifest["decontamination"] = {
            "from": str(Path(shard_dir).resolve()),
            "n": n,
            "items": len(texts),
            "items_sha256": sha256_bytes("\n".join(texts).encode("utf-8")),
            "dropped_documents": len(report.overlaps),
        }
        atomic_write_json(folder / MANIFEST, manifest)
    return report


def _record_text(record, fields: list[str], where: str) -> str:
    parts = []
    for name in fields:
        if not isinstance(record, dict) or name not in record:
            found = ", ".join(record) if isinstance(record, dict) else type(record).__name__
            raise GrowlmError(f"{where} has no field {name!r} (fields: {found}); choose one with `fields`")
        value = record[name]
        parts.extend(map(str, value) if isinstance(value, list) else [str(value)])
    return "\n".join(parts)


def read_items(path: str | Path, fields: list[str] | None = None) -> list[str]:
    """Evaluation items: a .txt file (one item per line) or .jsonl / .jsonl.gz (the text of `fields`, joined)."""
    path = Path(path)
    if not path.is_file():
        raise GrowlmError(f"evaluation file {path} not found")
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    if name.endswith(".txt"):
        return [line for line in lines if line.strip()]
    if not name.endswith((".jsonl", ".jsonl.gz")):
        raise GrowlmError(f"{path}: evaluation items must be .txt (one per line) or .jsonl with a text field")
    items = []
    for k, line in enumerate(lines):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise GrowlmError(f"{path} line {k + 1} is not JSON ({err.msg})") from None
            items.append(_record_text(record, fields or ["text"], f"{path} line {k + 1}"))
    return items
