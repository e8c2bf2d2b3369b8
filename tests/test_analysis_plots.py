"""The report figures: what each one draws, checked on the matplotlib objects."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from growlm.analysis.plots import ema, plot_loss_curve, plot_loss_vs_flops, plot_metric_by_depth, plot_subject_heatmap
from growlm.analysis.runs import EvalRecord
from growlm.train.records import MetricRow, ValRow, row_from_json


def metrics(stages: int, steps: int = 20, flops_per_step: float = 1e9) -> list[MetricRow]:
    rows, step = [], 0
    for stage in range(1, stages + 1):
        rows.append(
            {
                "kind": "stage_start",
                "stage": stage,
                "depth": stage,
                "step": step,
                "trainable_params": 1,
                "total_params": 1,
            }
        )
        for s in range(steps):
            step += 1
            rows.append(
                {
                    "kind": "train",
                    "stage": stage,
                    "depth": stage,
                    "step": step,
                    "stage_step": s + 1,
                    "lr": 1e-3,
                    "loss": 5 - s / steps,
                    "flops": step * flops_per_step,
                    "tokens": step * 100,
                }
            )
        rows.append(
            {
                "kind": "val",
                "stage": stage,
                "depth": stage,
                "step": step,
                "val_loss": 4.0 - stage / 10,
                "flops": step * flops_per_step,
                "tokens": step * 100,
            }
        )
    return [row_from_json(r) for r in rows]


def test_ema_has_no_zero_start_bias_and_follows_a_step():
    np.testing.assert_allclose(ema([3.0] * 10, span=5), 3.0)
    smoothed = ema([0.0] * 50 + [1.0] * 50, span=5)
    assert smoothed[49] == 0 and 0 < smoothed[51] < 1 and smoothed[-1] == pytest.approx(1, abs=1e-6)


def test_loss_curve_marks_each_growth_step_once():
    fig = plot_loss_curve(metrics(stages=4))
    ax = fig.axes[0]
    growth_lines = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert sorted(line.get_xdata()[0] for line in growth_lines) == [20, 40, 60]
    assert [t.get_text() for t in ax.texts] == ["depth 2", "depth 3", "depth 4"]
    val_line = next(line for line in ax.get_lines() if line.get_label() == "validation")
    assert list(val_line.get_ydata()) == pytest.approx([3.9, 3.8, 3.7, 3.6])


def test_loss_vs_flops_draws_one_curve_per_run_on_a_log_axis():
    without_val = [r for r in metrics(stages=1, steps=30) if not isinstance(r, ValRow)]
    fig = plot_loss_vs_flops({"constructive": metrics(stages=3), "monolithic": without_val})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["constructive", "monolithic (train)"]
    assert list(ax.get_lines()[0].get_xdata()) == [20e9, 40e9, 60e9]


def test_metric_by_depth_has_a_panel_per_task_with_band_and_chance():
    records = [
        EvalRecord(d, task, "acc", 0.25 + d / 100, 0.2, 0.35, 0.25, 100)
        for task in ("mmlu", "arc_easy")
        for d in (1, 2, 3)
    ]
    records += [EvalRecord(d, "squad", "f1", d * 2.0) for d in (1, 2, 3)]
    records += [EvalRecord(1, "mmlu", "acc", 0.3, subject="anatomy")]
    fig = plot_metric_by_depth(records)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["mmlu · acc (n=100)", "arc_easy · acc (n=100)", "squad · f1"]
    for ax, has_interval in zip(panels, (True, True, False)):
        assert any(isinstance(c, PolyCollection) for c in ax.collections) == has_interval
        assert any(line.get_label() == "chance" for line in ax.get_lines()) == has_interval
        assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]


def test_subject_heatmap_is_subjects_by_depth():
    records = [
        EvalRecord(d, "mmlu", "acc", s + d / 10, subject=name)
        for s, name in enumerate(["virology", "anatomy"])
        for d in (1, 2, 3, 4)
    ]
    records.append(EvalRecord(1, "mmlu", "acc", 0.9))  # the overall row is not a subject
    fig = plot_subject_heatmap(records)
    grid = fig.axes[0].get_images()[0].get_array()
    assert grid.shape == (2, 4)
    np.testing.assert_allclose(grid[0], [1.1, 1.2, 1.3, 1.4])  # anatomy first (sorted)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["anatomy", "virology"]
