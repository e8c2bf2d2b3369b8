"""Running spool jobs (work.py) on N processes, with a progress bar (MB of input per second, ETA), skipping the
jobs an earlier, interrupted run finished. Jobs run largest file first; their results do not depend on N.

Workers are forked (spawn would re-run an unguarded `__main__` script) and tokenize on one thread each: the
processes are the parallelism. A worker whose parent dies exits within a second.
Crash point (growlm.faults, tests only): GROWLM_FAULT=prepare:K[:MODE] hits once the K-th job of this process
finished.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from growlm.data.work import Job, finished, spool
from growlm.faults import crash_point
from growlm.tokenizer import BvvTokenizer

AUTO_BYTES_PER_WORKER = 16 << 20  # without an explicit number of workers, small inputs stay in-process

_WORKER: dict = {}


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _init_worker(tokenizer: BvvTokenizer, seed: int, work: Path, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _WORKER.update(tokenizer=tokenizer, seed=seed, work=work)


def _work(job: Job) -> tuple[Job, dict]:
    return job, spool(job, _WORKER["tokenizer"], _WORKER["seed"], _WORKER["work"])


def _pool(workers: int, tokenizer: BvvTokenizer, seed: int, work: Path):
    unset = "TOKENIZERS_PARALLELISM" not in os.environ
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizers reads it when the process forks
    try:
        return multiprocessing.get_context("fork").Pool(workers, _init_worker, (tokenizer, seed, work, os.getpid()))
    finally:
        if unset:
            del os.environ["TOKENIZERS_PARALLELISM"]


def _results(
    todo: list[Job], tokenizer: BvvTokenizer, seed: int, work: Path, workers: int
) -> Iterator[tuple[Job, dict]]:
    if workers <= 1:
        yield from ((j, spool(j, tokenizer, seed, work)) for j in todo)
        return
    with _pool(workers, tokenizer, seed, work) as pool:
        yield from pool.imap_unordered(_work, todo)


def choose_workers(workers: int | None, todo: list[Job]) -> int:
    if workers is None:
        cores = len(os.sched_getaffinity(0))
        workers = min(cores, max(1, sum(j.task.size for j in todo) // AUTO_BYTES_PER_WORKER))
    return max(1, min(workers, len(todo)))


def run_jobs(
    jobs: list[Job], tokenizer: BvvTokenizer, seed: int, work: Path, workers: int | None, progress: bool, desc: str
) -> dict[str, dict]:
    """task.json of every job by its folder name, running those an earlier run did not finish."""
    done = {j.folder: info for j in jobs if (info := finished(work, j)) is not None}
    todo = sorted((j for j in jobs if j.folder not in done), key=lambda j: -j.task.size)
    if done:
        print(f"{desc}: resuming from {work}: {len(done)} of {len(jobs)} files already done", file=sys.stderr)
    sizes = [j.task.size for j in jobs]
    with tqdm(
        total=sum(sizes),
        initial=sum(j.task.size for j in jobs if j.folder in done),
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1000,
        disable=not progress,
    ) as bar:
        for job, info in _results(todo, tokenizer, seed, work, choose_workers(workers, todo)):
            done[job.folder] = info
            bar.update(job.task.size)
            crash_point("prepare")
    return done
