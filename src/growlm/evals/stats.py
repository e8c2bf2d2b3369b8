"""Percentile bootstrap confidence intervals over evaluation items, with a fixed seed.

Every metric here is a function of per-item statistics summed over items (accuracy: correct and 1; perplexity:
nll and tokens; corpus BLEU: sacreBLEU's n-gram counts), so one resampler serves them all: draw n items with
replacement, sum their rows, apply the metric.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

SEED = 1234
RESAMPLES = 1000
LEVEL = 0.95


def _resampled(item_stats, metric: Callable[[np.ndarray], float], resamples: int, seed: int) -> np.ndarray:
    """metric(sum of n rows drawn with replacement), `resamples` times."""
    rng = np.random.default_rng(seed)
    n = len(item_stats)
    return np.array([metric(item_stats[rng.integers(0, n, n)].sum(axis=0)) for _ in range(resamples)])


def _central(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(
    item_stats: np.ndarray,
    metric: Callable[[np.ndarray], float],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float]:
    """(low, high) of the central `level` interval of metric(sum of resampled rows)."""
    item_stats = np.asarray(item_stats, dtype=np.float64)
    if item_stats.ndim == 1:
        item_stats = item_stats[:, None]
    if len(item_stats) == 0:
        return (float("nan"), float("nan"))
    return _central(_resampled(item_stats, metric, resamples, seed), level)


def mean_ci(values, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, tuple[float, float]]:
    """Mean of per-item values (accuracy, EM, F1) and its bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    point = float(values.mean()) if n else float("nan")
    return point, bootstrap_ci(values, lambda s: s[0] / n, resamples, seed)


def paired_improvement(
    item_stats,
    metric: Callable[[np.ndarray], float],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, tuple[float, float], float]:
    """For paired per-item rows (both models scored on the same items): metric on all items, its percentile
    bootstrap interval (items resampled together, so the pairing is kept), and the share of resamples where the
    metric is <= 0: a one-sided bootstrap p-value for "metric > 0"."""
    item_stats = np.asarray(item_stats, dtype=np.float64)
    values = _resampled(item_stats, metric, resamples, seed)
    return metric(item_stats.sum(axis=0)), _central(values, level), float((values <= 0).mean())
