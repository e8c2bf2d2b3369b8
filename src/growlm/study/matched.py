"""Comparison of a study's arms by their runs' final validation losses, paired over seeds.

Only the end of a run's own schedule is compared: a run read mid-schedule has not decayed its learning rate yet,
and such readings misjudge growth (Kaddour et al., "No Train No Gain", 2023). A compute-matched comparison is
therefore one between runs whose schedules were each planned to end at the same training FLOPs (growth-operators'
budget ladder); `FinalComparison.flops` records what every run spent, so a table shows whether its arms are matched.
A run's validation curve (its "val" rows against cumulative training FLOPs) is only plotted (`bands`): at a growth
step it has two rows at the same FLOPs (the end of one stage, then the start of the next with its new blocks).

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

from growlm.analysis.tables import Table
from growlm.train.records import MetricRow, ValRow


def val_curve(metrics: Sequence[MetricRow]) -> list[tuple[float, float]]:
    """(cumulative FLOPs, validation loss) in the order logged."""
    return [(r.flops, r.val_loss) for r in metrics if isinstance(r, ValRow)]


def loss_at(curve: Sequence[tuple[float, float]], budget: float) -> float | None:
    """Validation loss when the run had spent `budget` FLOPs, linear between evaluations (None when it never got
    there); for plotting a run along its way, never for a comparison."""
    for (f0, l0), (f1, l1) in zip(curve, curve[1:]):
        if f0 <= budget <= f1 and f1 > f0:
            return l0 + (l1 - l0) * (budget - f0) / (f1 - f0)
    if curve and curve[-1][0] == budget:
        return curve[-1][1]
    return None


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


def final_rows(runs) -> list[tuple[float, float]]:
    """(total training FLOPs, final validation loss) of each run (anything with .metrics()): its last val row."""
    return [val_curve(run.metrics())[-1] for run in runs]


def compare_final(finals: Mapping[str, Sequence[tuple[float, float]]], reference: str) -> FinalComparison:
    """finals: arm -> (total training FLOPs, final validation loss) per seed, every arm the same seeds in the same
    order. Nothing is read mid-schedule or interpolated."""
    losses = {arm: [loss for _, loss in runs] for arm, runs in finals.items()}
    flops = {arm: [f for f, _ in runs] for arm, runs in finals.items()}
    differences = {arm: paired(values, losses[reference]) for arm, values in losses.items() if arm != reference}
    return FinalComparison(reference, losses, flops, differences)


def final_table(comparison: FinalComparison, title: str, note: str, labels: Mapping[str, str] | None = None) -> Table:
    """One row per arm: training FLOPs against the reference's, final loss (mean ± sd), and for every arm but the
    reference the paired difference [95% interval] with its raw and Holm-adjusted p."""
    labels = labels or {}
    adjusted = comparison.holm()
    rows = []
    for arm, losses in comparison.losses.items():
        diff = comparison.differences.get(arm)
        rows.append(
            [
                labels.get(arm, arm),
                f"{statistics.fmean(comparison.flops[arm]):.3e} ({comparison.flops_ratio(arm):.3f}x)",
                mean_sd_text(losses),
                diff.cell() if diff else None,
                p_cell(diff.p) if diff else None,
                p_cell(adjusted.get(arm)),
            ]
        )
    seeds = len(comparison.losses[comparison.reference])
    return Table(
        title,
        [
            "arm",
            f"training FLOPs (x {comparison.reference})",
            "final val loss",
            f"Δ vs {comparison.reference}",
            "p",
            "p (Holm)",
        ],
        rows,
        f"Final validation loss (nats/token): each run's last validation, at the end of its own schedule, mean ± sd "
        f"over {seeds} seed(s). Δ: arm - {comparison.reference}, paired by seed, mean [95% t interval]; p: "
        "two-sided paired t-test (negative Δ: the arm is better); p (Holm): adjusted over the arms compared. " + note,
    )
