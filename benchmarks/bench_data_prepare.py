"""Preparation speed: every named English, Russian and Chinese source through `prepare`, on at most 2 CPU cores.

Per source: seconds for prepare() (read, clean, split, tokenize, write shards) and its throughput in MB of
cleaned UTF-8 text per second. Reference, in the same process: tokenizing the same cleaned text alone
(encode_batch, nothing read or written); "x tokenize" = prepare time / tokenize-only time. The budget is 2
minutes for all sources together.
Run: .venv/bin/python benchmarks/bench_data_prepare.py [--tokenizer DIR] [--sources NAME ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from growlm.data.prepare import prepare
from growlm.data.sources import SOURCES, read_source
from growlm.tokenizer import default_tokenizer, load_tokenizer

BUDGET_S = 120.0
CORES = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the built-in one)")
    parser.add_argument("--sources", nargs="+", default=[n for n, s in SOURCES.items() if s.kind == "text"])
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:CORES])
    tok = load_tokenizer(args.tokenizer) if args.tokenizer else default_tokenizer()
    print(f"{len(available[:CORES])} cores, load average {os.getloadavg()[0]:.1f}, tokenizer {tok.sha256[:12]}")
    print(f"{'source':<22}{'MB':>7}{'prepare s':>11}{'MB/s':>8}{'tokenize s':>12}{'x tokenize':>12}")
    total_mb = total_s = total_ref = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sources:
            source = SOURCES[name]
            texts = [d.text for d in read_source(source, source.files()).documents]
            mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
            start = time.perf_counter()
            tok.encode_batch(texts)
            reference = time.perf_counter() - start
            start = time.perf_counter()
            prepare([(name, None)], tok, Path(tmp) / name, progress=False)
            seconds = time.perf_counter() - start
            print(f"{name:<22}{mb:>7.2f}{seconds:>11.2f}{mb / seconds:>8.2f}{reference:>12.2f}"
                  f"{seconds / reference:>11.2f}x")
            total_mb, total_s, total_ref = total_mb + mb, total_s + seconds, total_ref + reference
    print(f"{'all':<22}{total_mb:>7.2f}{total_s:>11.2f}{total_mb / total_s:>8.2f}{total_ref:>12.2f}"
          f"{total_s / total_ref:>11.2f}x")
    verdict = "within" if total_s <= BUDGET_S else "OVER"
    print(f"all sources: {total_s:.0f} s for {total_mb:.1f} MB, {verdict} the {BUDGET_S:.0f} s budget "
          f"({total_s / BUDGET_S:.2f} of it)")


if __name__ == "__main__":
    main()
