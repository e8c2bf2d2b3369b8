"""Preparation at scale: a synthetic corpus through `prepare` (what `growlm data prepare` runs) on N workers.

The corpus: the cleaned documents of the installed named text sources (--sources), repeated until --size-mb MB of
UTF-8 text, written as FineWeb-style shards of --shard-mb MB (--format jsonl, jsonl.gz or parquet, one record per
document; or txt, one file per document) under --dir (default: a temporary folder, removed afterwards).
`growlm data prepare --workers N` runs in a child process. Reported: MB of text per second of wall time, in total
and per worker; MB per CPU second (user + system time of the child and its workers, so a loaded machine does not
distort it); peak RSS (ru_maxrss of the children, i.e. the largest of the prepare process and its workers; and of
this process, which holds the source texts to write the corpus); and, as the ceiling, one core tokenizing a 16 MB
sample of the same text with nothing read or written (MB per CPU second). Targets: >= 2 MB/s per core on plain
text; peak RSS < 2 GB whatever the corpus size.
Run: .venv/bin/python -m benchmarks.bench_data_prepare [--size-mb 1000] [--workers N] [--format jsonl]
     [--sources NAME ...] [--tokenizer DIR] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from growlm.data.sources import SOURCES, read_source
from growlm.tokenizer import default_tokenizer, load_tokenizer

SAMPLE_BYTES = 16 << 20


def _write_shard(folder: Path, number: int, texts: list[str], fmt: str) -> None:
    if fmt == "txt":
        for i, t in enumerate(texts):
            (folder / f"{number:05d}-{i:05d}.txt").write_text(t, encoding="utf-8")
        return
    path = folder / f"shard-{number:05d}.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"text": texts}), path)
        return
    data = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts).encode("utf-8")
    path.write_bytes(gzip.compress(data, compresslevel=1) if fmt == "jsonl.gz" else data)


def write_corpus(folder: Path, texts: list[str], size_bytes: int, shard_bytes: int, fmt: str) -> int:
    """Shards of the texts repeated until size_bytes; returns the bytes of text written."""
    folder.mkdir(parents=True)
    written, shard, rows, rows_bytes = 0, 0, [], 0
    for t in itertools.cycle(texts):
        rows.append(t)
        rows_bytes += len(t.encode("utf-8"))
        if rows_bytes >= shard_bytes or written + rows_bytes >= size_bytes:
            _write_shard(folder, shard, rows, fmt)
            written, shard, rows, rows_bytes = written + rows_bytes, shard + 1, [], 0
            if written >= size_bytes:
                return written
    raise AssertionError("unreachable")


def _tokenize_rate(tok, texts: list[str]) -> float:
    """MB per CPU second of one core tokenizing a sample, nothing read or written."""
    sample, size = [], 0
    for t in itertools.cycle(texts):
        sample.append(t)
        size += len(t.encode("utf-8"))
        if size >= SAMPLE_BYTES:
            break
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread, like one worker
    start = time.process_time()
    for i in range(0, len(sample), 64):
        tok.encode_batch(sample[i : i + 64])
    return size / 1e6 / (time.process_time() - start)


def _run_prepare(root: Path, tokenizer: str | None, workers: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB) of `growlm data prepare` in a child process."""
    command = [
        sys.executable,
        "-m",
        "growlm",
        "data",
        "prepare",
        "--source",
        str(root / "corpus"),
        "--out",
        str(root / "shards"),
        "--workers",
        str(workers),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command + (["--tokenizer", tokenizer] if tokenizer else []), check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu, after.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1000.0, help="corpus size in MB of text (default 1000)")
    parser.add_argument("--shard-mb", type=float, default=32.0)
    parser.add_argument("--format", choices=["jsonl", "jsonl.gz", "parquet", "txt"], default="jsonl")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--sources", nargs="+", help="named sources to repeat (default: every installed text one)")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the built-in one)")
    parser.add_argument("--dir", help="where to write the corpus and shards (default: a temporary folder)")
    args = parser.parse_args()
    names = args.sources or [n for n, s in SOURCES.items() if s.kind == "text" and s.is_installed]
    tok = load_tokenizer(args.tokenizer) if args.tokenizer else default_tokenizer()
    texts = [d.text for n in names for d in read_source(SOURCES[n], SOURCES[n].files()).documents]
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-prepare-"))
    try:
        size = write_corpus(root / "corpus", texts, int(args.size_mb * 1e6), int(args.shard_mb * 1e6), args.format)
        files = sum(1 for _ in (root / "corpus").iterdir())
        print(
            f"corpus: {size / 1e6:.0f} MB of text from {', '.join(names)} in {files} {args.format} files; "
            f"{args.workers} workers, load average {os.getloadavg()[0]:.1f} on "
            f"{len(os.sched_getaffinity(0))} cores, tokenizer {tok.sha256[:12]}"
        )
        seconds, cpu, child_rss = _run_prepare(root, args.tokenizer, args.workers)
        mb, ceiling = size / 1e6, _tokenize_rate(tok, texts)
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"prepare: {seconds:.1f} s wall, {mb / seconds:.2f} MB/s, {mb / seconds / args.workers:.2f} MB/s per "
            f"worker; {mb / cpu:.2f} MB per CPU second (target >= 2); one core tokenizing alone: "
            f"{ceiling:.2f} MB per CPU second"
        )
        print(
            f"peak RSS: prepare (largest process) {child_rss:.0f} MB (target < 2048), this benchmark {self_rss:.0f} MB"
        )
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
