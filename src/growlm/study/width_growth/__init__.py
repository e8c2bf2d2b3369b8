"""The width-growth study: does growing a model in WIDTH (start narrow, widen to the target) pay against training
the target monolithically, and against growing it in depth, at the SAME training FLOPs?

Every arm ends at growth-operators' target shape (cpu: d_model 128, 4 heads of 32, d_ff 384, 9 blocks) on the same
frozen visual substrate, tokenizer and shards; monolithic, paper and gstack are growth-operators' arms, configured
by its own arm_config (same scale patch, base budget and rates, so a budget means the same in both studies). The
width arms train all 9 blocks at half the width (d_model/2, half the heads, d_ff by the 8/3 rule) for 25% of the
training FLOPs, then widen to the target (growth.stages.1.widen, no new blocks) and train the rest: width-zero,
width-copy and width-random (growlm.model.widen: zero and copy preserve the function, random does not) with the old
weights training, and the same three with the old weights frozen (only the new rows and columns of the blocks
train; the final norm and LM head train whole). depth+width starts with 3 blocks at half width, then widens them
(copy) and stacks 6 more (growth.init stack), everything training. After the six width arms of a budget, the one
with the lowest mean final loss is varied twice: best-4x starts at a quarter width, best-late grows at 50% of the
FLOPs. The pick uses the same seeds the comparison uses (a selection effect: the picked arm is favoured).

FLOPs are matched as in growth-operators: the monolithic run's training FLOPs are the target, each stage's tokens
are solved from its exact FLOPs per token (growlm.train.costs.stage_shapes: a narrower stage is cheaper, so it sees
more tokens), whole optimizer steps, the last stage absorbing the rounding. Each arm's peak learning rate is chosen
per budget on a held-out seed (growth-operators' rate_grid and edge extension); arms are compared only by each
run's last validation, paired with monolithic by seed, 95% t intervals, Holm over the arms, per budget.

What it cannot show: the frozen substrate is the input. A narrow model reads a d/2-dimensional fixed projection of
it (the substrate lifted to d_model), and widening never adds substrate information: the widened embedding's new
columns are 0 (zero, random) or tiles of the old ones (copy). Width growth on a frozen substrate therefore starts
with less input information than monolithic, and a loss gap may be that rather than the growth. One target shape,
one data set, small models and few seeds: a difference not shown is not evidence of none.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from growlm.analysis.plots import plot_ladder, plot_loss_bands
from growlm.analysis.tables import Table
from growlm.config import Patch
from growlm.errors import GrowlmError
from growlm.study.definition import Study
from growlm.study.growth_operators import rate_grid
from growlm.study.growth_operators.tables import ladder_table
from growlm.study.matched import FinalComparison, Paired, bands, compare_final, final_rows, val_curve
from growlm.study.output import write_study
from growlm.study.runs import configure, shared_inputs
from growlm.study.scales import train
from growlm.study.sweep import HELD_OUT_SEED, SWEEP_SEED, ArmRuns, sweep_table, tuned_arm
from growlm.study.width_growth.arms import (
    ARMS,
    BEST,
    KNOWN,
    REFERENCE,
    SCALES,
    SIX,
    Arm,
    WidthOptions,
    base_config,
    best_variant,
    budgets_of,
    chosen_arms,
    config_of,
)
from growlm.study.width_growth.tables import Verdict, arms_table, budget_name, contrast_table, contrasts

__all__ = ["ARMS", "REFERENCE", "SCALES", "STUDY", "WidthOptions", "config_of", "run"]


def group(budget: float) -> str:
    """The runs of one budget live in STUDY/runs/budget-B/ARM/... (a best arm in .../ARM/PICKED/...)."""
    return f"budget-{budget:g}"


@dataclass(frozen=True)
class Rung:
    """One budget's trained arms: their runs and what each arm is (a best arm made concrete)."""

    budget: float
    runs: dict[str, ArmRuns]
    arms: dict[str, Arm]
    picked: str | None  # the width arm best-4x / best-late vary

    def comparison(self) -> FinalComparison:
        return compare_final({name: final_rows(arm.runs) for name, arm in self.runs.items()}, REFERENCE)


def _tune(opts: WidthOptions, arm: Arm, budget: float, shared: Patch, below: float | None) -> ArmRuns:
    scale = SCALES[opts.scale]
    cfg = config_of(arm, opts.scale, opts.sets, budget)
    folder = f"{group(budget)}/{arm.name}" + (f"/{arm.picked}" if arm.picked else "")
    grid = rate_grid(scale.lrs, budget, below)
    return tuned_arm(
        opts.root,
        folder,
        grid,
        opts.seed_list,
        lambda lr, seed: configure(cfg, shared, train(lr=lr, seed=seed), {"name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"}),
        # one rate and no step past it: nothing to choose, so no held-out run (smoke); the sweep is seed 0's run
        sweep_seed=HELD_OUT_SEED if len(grid) > 1 or scale.edge_steps else SWEEP_SEED,
        extend=scale.edge_steps,
    )


def pick_best(runs: dict[str, ArmRuns]) -> str | None:
    """The width arm with the lowest mean final validation loss over the evaluation seeds (None without one)."""
    candidates = [name for name in SIX if name in runs]
    if not candidates:
        return None
    return min(candidates, key=lambda name: statistics.fmean(loss for _, loss in final_rows(runs[name].runs)))


def train_rung(opts: WidthOptions, budget: float, shared: Patch, below: dict[str, float]) -> Rung:
    """Every chosen arm at `budget`; best-4x and best-late after the width arms they choose from."""
    chosen = chosen_arms(opts.arms)
    arms = {arm.name: arm for arm in chosen if arm.name not in BEST}
    runs = {name: _tune(opts, arm, budget, shared, below.get(name)) for name, arm in arms.items()}
    picked = pick_best(runs)
    for arm in chosen:
        if arm.name in BEST and picked is not None:
            arms[arm.name] = best_variant(arm.name, KNOWN[picked])
            runs[arm.name] = _tune(opts, arms[arm.name], budget, shared, below.get(arm.name))
    return Rung(budget, runs, arms, picked if any(name in runs for name in BEST) else None)


def train_arms(opts: WidthOptions) -> list[Rung]:
    """One rung per budget, the smallest first, so that a ladder cut short has its cheap rungs."""
    if opts.seeds > HELD_OUT_SEED:
        raise GrowlmError(f"`seeds` {opts.seeds}: at most {HELD_OUT_SEED} (seed {HELD_OUT_SEED} tunes the rates)")
    shared = shared_inputs(config_of(KNOWN[REFERENCE], opts.scale, opts.sets), opts.root / "inputs")
    rungs: list[Rung] = []
    below: dict[str, float] = {}  # each arm's rate at the budget below
    for budget in sorted(budgets_of(opts)):
        rungs.append(train_rung(opts, budget, shared, below))
        below = {name: runs.lr for name, runs in rungs[-1].runs.items()}
    return rungs


def relabelled(comparison: FinalComparison, labels: dict[str, str]) -> FinalComparison:
    """The comparison with its arms renamed (`labels`: name -> label; absent names stay)."""

    def rename(values: dict) -> dict:
        return {labels.get(arm, arm): value for arm, value in values.items()}

    c = comparison
    reference = labels.get(c.reference, c.reference)
    return FinalComparison(reference, rename(c.losses), rename(c.flops), rename(c.differences))


def ladder(comparisons: dict[float, FinalComparison], labels: dict[str, str] | None = None) -> tuple[Table, Figure]:
    """The arms' differences to monolithic across budgets, the arms named by `labels`: a table and a plot."""
    comparisons = {b: relabelled(c, labels or {}) for b, c in comparisons.items()}
    cells = {
        arm: [(d.mean, d.low, d.high) for d in (c.differences[arm] for c in comparisons.values())]
        for arm in next(iter(comparisons.values())).differences
    }
    mean_flops = [statistics.fmean(c.flops[REFERENCE]) for c in comparisons.values()]
    return ladder_table(comparisons), plot_ladder(mean_flops, cells, REFERENCE)


def ladder_labels(rungs: list[Rung]) -> dict[str, str]:
    """A best arm's label where every budget picked the same width arm, else a name saying the pick varies."""
    labels = {}
    for name in BEST:
        seen = {r.arms[name].label for r in rungs if name in r.arms}
        if seen:
            labels[name] = seen.pop() if len(seen) == 1 else f"{name} (the best width arm of each budget)"
    return labels


def _description(opts: WidthOptions, rungs: list[Rung], verdicts: dict[float, str]) -> str:
    reference = rungs[0].runs[REFERENCE].runs[0].config
    scale = SCALES[opts.scale]
    base = "" if scale.base_budget == 1 else f"{scale.base_budget:g} x "
    picks = "; ".join(f"{budget_name(r.budget)}: {r.picked}" for r in rungs if r.picked)
    return (
        f"Growth in width (and depth) against monolithic training at equal training FLOPs, {opts.scale} scale: "
        f"visual substrate (frozen), target d_model {reference.model.d_model} with {reference.model.n_heads} heads, "
        f"d_ff {reference.model.ff}, 9 blocks, context {reference.model.context}, data "
        f"{', '.join(reference.data.sources)}; {opts.seeds} seed(s) per arm; budgets "
        f"{', '.join(f'{r.budget:g}' for r in rungs)} x {base}growth-operators' {scale.base} base budget. "
        + (f"Best width arm (varied by best-4x, best-late), picked on the same seeds: {picks}. " if picks else "")
        + "Verdict: "
        + " ".join(f"{budget_name(b)}: {text}" for b, text in verdicts.items())
    )


def _rung_outputs(
    rung: Rung, comparison: FinalComparison, found: dict[str, Paired], suffix: str
) -> tuple[list[Table], dict[str, Figure]]:
    """A budget's tables and its validation-curve plot."""
    tables = [arms_table(rung.runs, rung.arms, comparison, rung.budget)]
    if found:
        tables.append(contrast_table(found, rung.budget))
    lrs = tuple(sorted({lr for a in rung.runs.values() for lr in a.sweep}))
    labelled = {rung.arms[name].label: arm for name, arm in rung.runs.items()}
    tables.append(sweep_table(labelled, lrs, f", {budget_name(rung.budget)}"))
    curves = {rung.arms[n].label: [val_curve(run.metrics()) for run in a.runs] for n, a in rung.runs.items()}
    figure = plot_loss_bands(
        {label: bands(c) for label, c in curves.items()},
        f"Validation loss along each run, {budget_name(rung.budget)} (mid-run points are not comparisons)",
    )
    return tables, {f"val-loss-vs-flops{suffix}": figure}


def run(opts: WidthOptions) -> Path:
    rungs = train_arms(opts)
    comparisons = {r.budget: r.comparison() for r in rungs}
    found = {r.budget: contrasts(comparisons[r.budget].losses, r.picked) for r in rungs}
    verdicts = {r.budget: Verdict(comparisons[r.budget], found[r.budget], r.picked, opts.seeds).text() for r in rungs}
    tables, figures = [], {}
    if len(rungs) > 1:
        table, figures["delta-vs-budget"] = ladder(comparisons, ladder_labels(rungs))
        tables.append(table)
    for rung in rungs:
        suffix = "" if len(rungs) == 1 else f"-{group(rung.budget)}"
        more_tables, more_figures = _rung_outputs(rung, comparisons[rung.budget], found[rung.budget], suffix)
        tables += more_tables
        figures |= more_figures
    runs = {spec.label: spec.path for r in rungs for arm in r.runs.values() for spec in arm.runs}
    return write_study(
        opts.root,
        "width-growth",
        _description(opts, rungs, verdicts),
        runs,
        tables,
        figures,
        {
            "budgets": [r.budget for r in rungs],
            "comparisons": {f"{b:g}": c.to_json() for b, c in comparisons.items()},
            "picked": {f"{r.budget:g}": r.picked for r in rungs},
            "labels": {f"{r.budget:g}": {n: a.label for n, a in r.arms.items()} for r in rungs},
            "contrasts": {f"{b:g}": {n: vars(d) for n, d in c.items()} for b, c in found.items()},
            "verdicts": {f"{b:g}": text for b, text in verdicts.items()},
        },
    )


STUDY = Study("width-growth", SCALES, base_config, run, options=WidthOptions)
