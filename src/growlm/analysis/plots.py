"""The figures of a run or study: loss over all stages with growth steps marked, metrics by depth with confidence
bands, an MMLU subject x depth heatmap, validation loss against cumulative training FLOPs for several runs, and a
budget ladder's differences between arms against the budget.

Figures are built with matplotlib's object API (no pyplot, no GUI backend) and returned for the caller to save.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from growlm.analysis.runs import EvalRecord
from growlm.io.ownership import PNG_METADATA
from growlm.train.records import MetricRow, StageStart, TrainRow, ValRow

DPI = 110


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buffer.getvalue()


def save_png(fig: Figure, path: str | Path) -> None:
    Path(path).write_bytes(png_bytes(fig))


def ema(values: Sequence[float], span: int) -> np.ndarray:
    """Exponential moving average with the bias of its zero start removed."""
    alpha = 2.0 / (span + 1)
    out, level, weight = np.empty(len(values)), 0.0, 0.0
    for i, v in enumerate(values):
        level = (1 - alpha) * level + alpha * v
        weight = (1 - alpha) * weight + alpha
        out[i] = level / weight
    return out


def _rows(metrics: Sequence[MetricRow], kind: type) -> list:
    return [r for r in metrics if isinstance(r, kind)]


def plot_loss_curve(metrics: Sequence[MetricRow], title: str = "Training loss") -> Figure:
    """Train loss (raw and smoothed) and validation loss by global step; a dashed line where each layer was added."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    train, val = _rows(metrics, TrainRow), _rows(metrics, ValRow)
    grown = [r for r in val if r.at_stage_start]
    if train:
        steps = [r.step for r in train]
        losses = [r.loss for r in train]
        ax.plot(steps, losses, color="C0", alpha=0.25, lw=0.8)
        ax.plot(steps, ema(losses, max(1, len(losses) // 60)), color="C0", lw=1.6, label="train (smoothed)")
        # The first steps (loss ~ ln V) would flatten everything else; growth spikes come later and stay in view.
        ax.set_ylim(top=max(losses[len(losses) // 20 :] + [r.val_loss for r in grown]) * 1.05)
    if val:
        ax.plot([r.step for r in val], [r.val_loss for r in val], "o-", color="C3", ms=3.5, lw=1.2, label="validation")
        if grown:
            ax.plot(
                [r.step for r in grown],
                [r.val_loss for r in grown],
                "^",
                color="C3",
                ms=7,
                mfc="white",
                label="validation right after growth",
            )
    for r in _rows(metrics, StageStart):
        if r.stage > 1:
            ax.axvline(r.step, color="0.35", ls="--", lw=0.9)
            ax.annotate(
                f"depth {r.depth}",
                (r.step, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="0.25",
            )
    ax.set(xlabel="step", ylabel="loss (nats/token)", title=title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend(loc="lower left", fontsize=8)
    return fig


def plot_loss_vs_flops(curves: Mapping[str, Sequence[MetricRow]]) -> Figure:
    """Validation loss (train loss, smoothed, where a run has no validation rows) against cumulative FLOPs."""
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, (label, metrics) in enumerate(curves.items()):
        val = [r for r in _rows(metrics, ValRow) if r.flops]
        if val:
            ax.plot([r.flops for r in val], [r.val_loss for r in val], "o-", ms=3, color=f"C{i}", label=label)
            continue
        train = [r for r in _rows(metrics, TrainRow) if r.flops]
        if train:
            ax.plot(
                [r.flops for r in train],
                ema([r.loss for r in train], max(1, len(train) // 60)),
                color=f"C{i}",
                label=f"{label} (train)",
            )
    ax.set_xscale("log")
    ax.set(xlabel="cumulative training FLOPs", ylabel="loss (nats/token)", title="Loss at equal compute")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_loss_bands(
    bands: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    title: str = "Validation loss along each run (a point before a run's end is mid-schedule: not a comparison)",
) -> Figure:
    """Per arm: mean validation loss against cumulative FLOPs with a band of ± one sd over seeds. The first
    tenth of the FLOPs (loss near ln V) is left out so the arms' differences stay in view."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    low = min(grid[-1] for grid, _, _ in bands.values()) * 0.1
    for i, (label, (grid, mean, sd)) in enumerate(bands.items()):
        keep = [j for j, f in enumerate(grid) if f >= low]
        x = [grid[j] for j in keep]
        m, s = np.array([mean[j] for j in keep]), np.array([sd[j] for j in keep])
        color = f"C{i % 10}"
        ax.plot(x, m, color=color, lw=1.4, ls="-" if i < 10 else "--", label=label)
        ax.fill_between(x, m - s, m + s, color=color, alpha=0.15)
    ax.set(xlabel="cumulative training FLOPs", ylabel="validation loss (nats/token)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_ladder(
    budgets: Sequence[float],
    differences: Mapping[str, Sequence[tuple[float, float | None, float | None]]],
    reference: str,
) -> Figure:
    """Per arm: its paired difference to the reference arm (mean and 95% interval over seeds) at each training
    budget, budgets on a log axis; each point compares runs read at the end of their own schedules."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    ax.axhline(0.0, color="0.4", lw=1, ls=":")
    spread = 1.0 + 0.03 * (len(differences) - 1)  # arms side by side at each budget, so intervals do not overlap
    for i, (arm, cells) in enumerate(differences.items()):
        x = [b * spread ** (i - (len(differences) - 1) / 2) for b in budgets]
        mean = np.array([c[0] for c in cells])
        low = np.array([c[0] if c[1] is None else c[1] for c in cells])
        high = np.array([c[0] if c[2] is None else c[2] for c in cells])
        ax.errorbar(x, mean, yerr=[mean - low, high - mean], color=f"C{i % 10}", marker="o", capsize=3, label=arm)
    ax.set_xscale("log")
    ax.set(
        xlabel="training FLOPs per run (each run's schedule complete)",
        ylabel=f"Δ validation loss vs {reference} (nats/token)",
        title=f"Final validation loss minus {reference}'s at equal FLOPs, mean and 95% interval over seeds",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_metric_by_depth(records: Sequence[EvalRecord]) -> Figure:
    """One panel per task/metric: value by depth, its confidence band, and the chance level."""
    series: dict[tuple[str, str], list[EvalRecord]] = {}
    for r in records:
        if r.subject is None:
            series.setdefault((r.task, r.metric), []).append(r)
    columns = min(3, len(series))
    rows = math.ceil(len(series) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, ((task, metric), points) in zip(axes, series.items()):
        points = sorted(points, key=lambda r: r.depth)
        depths = [r.depth for r in points]
        ax.plot(depths, [r.value for r in points], "o-", color="C0", label=metric)
        if all(r.ci_low is not None and r.ci_high is not None for r in points):
            ax.fill_between(
                depths, [r.ci_low for r in points], [r.ci_high for r in points], color="C0", alpha=0.2, label="95% CI"
            )
        chance = {r.chance for r in points if r.chance is not None}
        if len(chance) == 1:
            ax.axhline(chance.pop(), color="C3", ls="--", lw=1, label="chance")
        n = {r.n for r in points if r.n}
        ax.set_title(f"{task} · {metric}" + (f" (n={n.pop()})" if len(n) == 1 else ""), fontsize=10)
        ax.set_xlabel("depth")
        ax.set_xticks(depths)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(series) :]:
        ax.axis("off")
    return fig


def plot_subject_heatmap(records: Sequence[EvalRecord], task: str = "mmlu") -> Figure:
    """Subjects (rows) x depth (columns), cell = the subject's score at that depth."""
    cells = {(r.subject, r.depth): r.value for r in records if r.subject is not None and r.task == task}
    subjects = sorted({s for s, _ in cells})
    depths = sorted({d for _, d in cells})
    grid = np.array([[cells.get((s, d), np.nan) for d in depths] for s in subjects])
    fig = Figure(figsize=(2.6 + 0.75 * len(depths), 1.2 + 0.26 * len(subjects)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.set_yticks(range(len(subjects)), subjects, fontsize=7)
    ax.set(xlabel="depth", title=f"{task} by subject and depth")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if value < np.nanmean(grid) else "black",
            )
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
