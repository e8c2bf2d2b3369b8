"""The growth-operators study: which way of growing a model to nine blocks pays, at the SAME training FLOPs as
training the nine blocks monolithically, and whether that holds as the budget grows.

Every arm ends at depth 9 on the same frozen substrate (visual; --substrate binary for the bit code), tokenizer
and shards. The growth arms add 3 blocks per stage (1-3, 4-6, 7-9) and differ in how the new blocks start
(growth.init) and in what the earlier blocks do afterwards; docs/GROWTH.md describes each operator and its source.
A cheaper schedule spends the monolithic arm's FLOPs on more tokens: each arm's stage tokens are solved from its
exact FLOPs per token (growlm.train.costs.stage_shapes), equal tokens per growth stage, rounded to whole steps.

The budget ladder (--budgets 0.25,1,4: multiples of the base budget) trains every arm once per budget, each run
with its own complete schedule (stage lengths and warm-up scaled, every stage decayed to the budget's end). Arms are
compared only by their runs' last validation rows, per budget, paired over seeds, Holm-adjusted over the arms. Each
arm's rate is chosen per budget on a held-out seed: the whole grid up to the base budget, above it the arm's rate at
the budget below and half of it; while the best is the smallest or largest tried, the next rate past it too
(sweep.past_edge), up to the scale's edge_steps times. Every stage warms up over the same tokens at a budget and
starts a fresh AdamW (the trainer's rule). Output per budget: the arms (final loss, Δ vs monolithic with a 95%
interval, raw and Holm p, FLOPs, tokens, tokens per parameter, wall, trainable parameters, growth spikes), the LR
sweep, and validation loss along the runs (a plot, not a comparison); for a ladder, Δ by budget as a table and plot.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from growlm.analysis.plots import plot_ladder, plot_loss_bands
from growlm.errors import GrowlmError
from growlm.study.definition import Study
from growlm.study.growth_operators.arms import (
    ARMS,
    REFERENCE,
    SCALES,
    GrowthOptions,
    arm_config,
    base_config,
    chosen_arms,
    default_seeds,
    matched_steps,
)
from growlm.study.growth_operators.tables import arms_table, budget_name, ladder_table, verdict
from growlm.study.matched import FinalComparison, bands, compare_final, final_rows, val_curve
from growlm.study.output import write_study
from growlm.study.runs import configure, shared_inputs
from growlm.study.scales import train
from growlm.study.sweep import HELD_OUT_SEED, ArmRuns, sweep_table, tuned_arm

__all__ = ["ARMS", "REFERENCE", "SCALES", "STUDY", "GrowthOptions", "arm_config", "matched_steps", "run"]


def group(budget: float) -> str:
    """The runs of one budget live in STUDY/runs/budget-B/ARM/..."""
    return f"budget-{budget:g}"


def train_arms(opts: GrowthOptions) -> dict[float, dict[str, ArmRuns]]:
    """Budget -> arm -> its tuned runs; the smallest budget first, so that a ladder cut short has its cheap rungs."""
    if opts.seeds > HELD_OUT_SEED:
        raise GrowlmError(f"`seeds` {opts.seeds}: at most {HELD_OUT_SEED} (seed {HELD_OUT_SEED} tunes the rates)")
    scale = SCALES[opts.scale]
    arms = chosen_arms(opts.arms, opts.budgets)
    shared = shared_inputs(arm_config(ARMS[1], opts.scale, opts.sets, opts.substrate), opts.root / "inputs")
    ladder: dict[float, dict[str, ArmRuns]] = {}
    below: dict[str, float] = {}  # each arm's rate at the budget below
    for budget in sorted(opts.budgets):
        configs = {arm.name: arm_config(arm, opts.scale, opts.sets, opts.substrate, budget) for arm in arms}
        ladder[budget] = {
            arm.name: tuned_arm(
                opts.root,
                f"{group(budget)}/{arm.name}",
                rate_grid(scale.lrs, budget, below.get(arm.name)),
                opts.seed_list,
                lambda lr, seed, cfg=configs[arm.name]: configure(
                    cfg, shared, train(lr=lr, seed=seed), {"name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"}
                ),
                sweep_seed=HELD_OUT_SEED,
                extend=scale.edge_steps,
            )
            for arm in arms
        }
        below = {name: runs.lr for name, runs in ladder[budget].items()}
    return ladder


def rate_grid(grid: tuple[float, ...], budget: float, below: float | None) -> tuple[float, ...]:
    """The rates an arm tries at `budget`: the scale's grid up to the base budget; above it, the arm's rate at the
    budget below and half of it (the best rate falls as the horizon grows), so a long run is tuned where it
    matters for two runs' cost instead of a grid's."""
    return grid if budget <= 1 or below is None else (below / 2, below)


def final_comparison(arms: dict[str, ArmRuns]) -> FinalComparison:
    """Every run's last validation row (FLOPs, loss): the end of its own schedule."""
    return compare_final({name: final_rows(runs.runs) for name, runs in arms.items()}, REFERENCE)


def run(opts: GrowthOptions) -> Path:
    scale = SCALES[opts.scale]
    ladder = train_arms(opts)
    comparisons = {budget: final_comparison(arms) for budget, arms in ladder.items()}
    verdicts = {budget: verdict(c, opts.seeds) for budget, c in comparisons.items()}
    reference = next(iter(ladder.values()))[REFERENCE].runs[0].config
    description = (
        f"Growth operators and schedules against monolithic training at equal training FLOPs, "
        f"{opts.scale} scale: {opts.substrate} substrate (frozen), d_model {reference.model.d_model}, "
        f"context {reference.model.context}, data {', '.join(reference.data.sources)}, depth 9 for every "
        f"arm, {opts.seeds} seed(s) per arm, budgets {', '.join(f'{b:g}' for b in ladder)} x the base "
        f"({scale.monolithic_steps} monolithic steps of {reference.train.batch_size * reference.model.context:,} "
        "tokens). Verdict: " + " ".join(f"{budget_name(b)}: {text}" for b, text in verdicts.items())
    )
    tables, figures = [], {}
    if len(ladder) > 1:
        tables.append(ladder_table(comparisons))
        cells = {
            arm: [(d.mean, d.low, d.high) for d in (comparisons[b].differences[arm] for b in ladder)]
            for arm in next(iter(comparisons.values())).differences
        }
        mean_flops = [statistics.fmean(c.flops[REFERENCE]) for c in comparisons.values()]
        figures["delta-vs-budget"] = plot_ladder(mean_flops, cells, REFERENCE)
    for budget, arms in ladder.items():
        suffix = "" if len(ladder) == 1 else f"-{group(budget)}"
        tables += [
            arms_table(arms, comparisons[budget], budget),
            sweep_table(arms, tuple(sorted({lr for a in arms.values() for lr in a.sweep})), f", {budget_name(budget)}"),
        ]
        curves = {name: [val_curve(run.metrics()) for run in runs.runs] for name, runs in arms.items()}
        figures[f"val-loss-vs-flops{suffix}"] = plot_loss_bands(
            {name: bands(c) for name, c in curves.items()},
            f"Validation loss along each run, {budget_name(budget)} (mid-run points are not comparisons)",
        )
    runs = {spec.label: spec.path for arms in ladder.values() for arm in arms.values() for spec in arm.runs}
    return write_study(
        opts.root,
        "growth-operators",
        description,
        runs,
        tables,
        figures,
        {
            "budgets": list(ladder),
            "comparisons": {f"{b:g}": c.to_json() for b, c in comparisons.items()},
            "verdicts": {f"{b:g}": text for b, text in verdicts.items()},
        },
    )


STUDY = Study("growth-operators", SCALES, base_config, run, options=GrowthOptions, default_seeds=default_seeds)
