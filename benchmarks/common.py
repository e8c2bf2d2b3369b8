"""Small helpers shared by the benchmarks: interleaved timing so that both sides see the same machine load."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved(
    runs: dict[str, Callable[[], None]], repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turn so load changes hit all alike.

    clock=time.process_time measures this process's CPU seconds instead of wall time.
    """
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(title)
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def machine_line(precision=None) -> str:
    """The machine every number of a benchmark belongs to: CPU model, torch's capability and bf16 units, threads,
    load, and (for training benchmarks) the precision `train.precision = "auto"` picks here."""
    import os

    import torch

    from growlm.precision import cpu_capability
    from growlm.provenance import cpu_model

    line = (
        f"{cpu_model()} ({os.cpu_count()} cores, {cpu_capability()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}"
    )
    return line + (f"\n{precision.describe()}" if precision is not None else "")
