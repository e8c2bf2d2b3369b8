"""Compute-matched comparison of a study's arms: validation loss at a common FLOP budget, per seed, paired over seeds.

A run's validation curve is its "val" metrics rows against cumulative training FLOPs, read piecewise-linearly
between evaluations. At a growth step the curve has two rows at the same FLOPs (the end of one stage, then the
start of the next with its new blocks): a budget falling exactly there reads the stage's end, the model that
budget bought. The budget is the smallest total any arm spent, so every arm reaches it; each arm's reading says at
what share of its own schedule it was taken (`shares`). Only a reading at the end of every compared schedule is a
comparison of finished training: a run read mid-schedule has not decayed its learning rate yet (Kaddour et al.,
"No Train No Gain", 2023), so earlier budgets along one run are not compared at all (the curves are plotted).

Arms are paired by seed (the same seed draws the same training batches and every run is validated on the same
windows): the difference arm - reference per seed, its mean with a 95% t interval and the two-sided paired t-test
p-value. With one seed there is no interval and no p-value.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from growlm.analysis.tables import Table, format_value
from growlm.train.records import MetricRow, ValRow

FRACTIONS = (1.0,)  # of the smallest total: the one budget compared


def val_curve(metrics: Sequence[MetricRow]) -> list[tuple[float, float]]:
    """(cumulative FLOPs, validation loss) in the order logged."""
    return [(r.flops, r.val_loss) for r in metrics if isinstance(r, ValRow)]


def loss_at(curve: Sequence[tuple[float, float]], budget: float) -> float | None:
    """Validation loss when the run had spent `budget` FLOPs (None when it never got there)."""
    for (f0, l0), (f1, l1) in zip(curve, curve[1:]):
        if f0 <= budget <= f1 and f1 > f0:
            return l0 + (l1 - l0) * (budget - f0) / (f1 - f0)
    if curve and curve[-1][0] == budget:
        return curve[-1][1]
    return None


def common_budgets(curves: Sequence[Sequence[tuple[float, float]]], fractions=FRACTIONS) -> list[float]:
    """Fractions of the smallest total FLOPs among the runs, leaving out any budget before some run's first
    validation (nothing to read there); the whole budget is always kept."""
    smallest = min(curve[-1][0] for curve in curves)
    first = max(curve[0][0] for curve in curves)
    return [f * smallest for f in fractions if f * smallest >= first or f == fractions[-1]]


@dataclass(frozen=True)
class Paired:
    mean: float
    low: float | None
    high: float | None
    p: float | None
    n: int

    def cell(self) -> str:
        text = f"{self.mean:+.3f}"
        if self.low is not None:
            text += f" [{self.low:+.3f}, {self.high:+.3f}]"
        return text


def paired(values: Sequence[float], reference: Sequence[float]) -> Paired:
    """values[i] - reference[i] over seeds i: mean, 95% t interval and two-sided paired t-test p."""
    diffs = np.asarray(values, float) - np.asarray(reference, float)
    mean = float(diffs.mean())
    if len(diffs) < 2:
        return Paired(mean, None, None, None, len(diffs))
    sd = float(diffs.std(ddof=1))
    if sd == 0:  # identical differences: the t-test is undefined unless there is no difference at all
        return Paired(mean, mean, mean, 1.0 if mean == 0 else None, len(diffs))
    half = float(stats.t.ppf(0.975, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    p = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return Paired(mean, mean - half, mean + half, p, len(diffs))


def holm(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm-Bonferroni adjusted p-values over a family of tests (None stays None and is not counted): the i-th
    smallest of m is multiplied by m - i + 1, capped at 1 and made non-decreasing. Rejecting where the adjusted p
    is below alpha keeps the family-wise error rate at alpha."""
    given = sorted((p, name) for name, p in pvalues.items() if p is not None)
    adjusted, running = {name: None for name in pvalues}, 0.0
    for i, (p, name) in enumerate(given):
        running = max(running, min(1.0, (len(given) - i) * p))
        adjusted[name] = running
    return adjusted


def p_cell(p: float | None) -> str | None:
    return None if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def mean_sd_text(values: Sequence[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


@dataclass(frozen=True)
class Comparison:
    """Every arm's loss at each budget, per seed, and its paired difference to the reference arm."""

    budgets: list[float]
    losses: dict[str, list[list[float]]]  # arm -> budget index -> per seed
    differences: dict[str, list[Paired]]  # arm -> budget index -> paired difference (reference absent)
    reference: str
    shares: dict[str, float]  # arm -> the last budget over the arm's own total FLOPs (mean over seeds; 1 = its end)

    def to_json(self) -> dict:
        return {
            "reference": self.reference,
            "budgets": self.budgets,
            "losses": self.losses,
            "differences": {arm: [vars(d) for d in ds] for arm, ds in self.differences.items()},
            "shares": self.shares,
        }

    def mid_schedule(self, tolerance: float = 0.01) -> list[str]:
        """The arms read more than `tolerance` before the end of their own schedule."""
        return [arm for arm, share in self.shares.items() if share < 1 - tolerance]


def compare(
    curves: Mapping[str, Sequence[Sequence[tuple[float, float]]]], reference: str, fractions=FRACTIONS
) -> Comparison:
    """curves: arm -> its runs' validation curves, seed by seed (every arm the same seeds, in the same order)."""
    budgets = common_budgets([c for runs in curves.values() for c in runs], fractions)
    losses = {arm: [[loss_at(c, b) for c in runs] for b in budgets] for arm, runs in curves.items()}
    differences = {
        arm: [paired(by_budget, ref) for by_budget, ref in zip(values, losses[reference])]
        for arm, values in losses.items()
        if arm != reference
    }
    shares = {arm: statistics.fmean(budgets[-1] / c[-1][0] for c in runs) for arm, runs in curves.items()}
    return Comparison(budgets, losses, differences, reference, shares)


def comparison_table(comparison: Comparison, title: str, labels: Mapping[str, str] | None = None) -> Table:
    """One row per arm: loss at each budget (mean ± sd) and, for every arm but the reference, the paired
    difference to it [95% interval] with its p-value."""
    labels = labels or {}
    columns = ["arm", "read at (share of own schedule)"]
    for b in comparison.budgets:
        columns += [f"val loss at {format_value(b)} FLOPs", f"Δ vs {comparison.reference}", "p"]
    rows = []
    for arm, by_budget in comparison.losses.items():
        row = [labels.get(arm, arm), f"{comparison.shares[arm]:.0%}"]
        for j, values in enumerate(by_budget):
            diff = comparison.differences.get(arm, [None] * len(by_budget))[j]
            row += [mean_sd_text(values), diff.cell() if diff else None, p_cell(diff.p) if diff else None]
        rows.append(row)
    seeds = len(next(iter(comparison.losses.values()))[0])
    mid = comparison.mid_schedule()
    caveat = (
        f" Read before the end of their own schedule (learning rate not yet decayed): {', '.join(mid)}; for "
        "them this is not a comparison of finished training at equal compute."
        if mid
        else " Every arm is read at the end of its own schedule (within 1%)."
    )
    return Table(
        title,
        columns,
        rows,
        f"Validation loss (nats/token) read off each run's curve at the smallest total training FLOPs of any run, "
        f"mean ± sd over {seeds} seed(s). "
        f"Δ: arm - {comparison.reference}, paired by seed, mean [95% t interval]; p: two-sided paired "
        "t-test (negative Δ: the arm is better)." + caveat,
    )


def bands(
    runs: Sequence[Sequence[tuple[float, float]]], points: int = 60
) -> tuple[list[float], list[float], list[float]]:
    """(FLOPs grid, mean, sd) of the runs' curves on a common grid up to the smallest run's total."""
    first = max(c[0][0] for c in runs)
    last = min(c[-1][0] for c in runs)
    grid = list(np.linspace(first, last, points))
    values = np.array([[loss_at(c, f) for f in grid] for c in runs], dtype=float)
    sd = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(grid))
    return grid, list(values.mean(axis=0)), list(sd)


@dataclass(frozen=True)
class FinalComparison:
    """Arms compared by their runs' final validation losses, each run read at the end of its own schedule (its
    learning rate fully decayed), at equal training FLOPs: `flops` records what every run spent, so a reader can
    check that the arms are matched (`flops_ratio`)."""

    reference: str
    losses: dict[str, list[float]]  # arm -> per seed: the last validation row of the run
    flops: dict[str, list[float]]  # arm -> per seed: the run's total training FLOPs
    differences: dict[str, Paired]  # arm -> paired difference to the reference (reference absent)

    def flops_ratio(self, arm: str) -> float:
        """The arm's training FLOPs over the reference's, mean over seeds."""
        return statistics.fmean(a / r for a, r in zip(self.flops[arm], self.flops[self.reference]))

    def holm(self) -> dict[str, float | None]:
        return holm({arm: d.p for arm, d in self.differences.items()})

    def to_json(self) -> dict:
        return {
            "reference": self.reference,
            "losses": self.losses,
            "flops": self.flops,
            "differences": {arm: vars(d) for arm, d in self.differences.items()},
            "p_holm": self.holm(),
        }


def compare_final(finals: Mapping[str, Sequence[tuple[float, float]]], reference: str) -> FinalComparison:
    """finals: arm -> (total training FLOPs, final validation loss) per seed, every arm the same seeds in the same
    order. Nothing is read mid-schedule or interpolated."""
    losses = {arm: [loss for _, loss in runs] for arm, runs in finals.items()}
    flops = {arm: [f for f, _ in runs] for arm, runs in finals.items()}
    differences = {arm: paired(values, losses[reference]) for arm, values in losses.items() if arm != reference}
    return FinalComparison(reference, losses, flops, differences)
