"""The growth-operators study's tables: the arms at one budget, the ladder across budgets, and the verdict."""

from __future__ import annotations

import statistics

from growlm.analysis.tables import Table
from growlm.study.growth_operators.arms import ARMS, REFERENCE
from growlm.study.matched import FinalComparison, mean_sd_text, p_cell
from growlm.study.sweep import ArmRuns


def _spikes(arm: ArmRuns) -> str | None:
    """Per growth stage: validation loss right after growth minus the previous stage's final loss (mean)."""
    summaries = [run.summary() for run in arm.runs]
    cells = [
        statistics.fmean(s[k].val_loss_at_start - s[k - 1].val_loss for s in summaries)
        for k in range(1, len(summaries[0]))
        if summaries[0][k].add_blocks
    ]
    return " / ".join(f"{c:+.4f}" for c in cells) or None


ARMS_COLUMNS = (
    "arm",
    "new blocks",
    "earlier blocks",
    "LR",
    "stages",
    "training tokens",
    "training FLOPs (x monolithic)",
    "tokens per param (trainable / non-embedding)",
    "trainable params by stage",
    "wall (s)",
    "final val loss",
    "Δ vs monolithic [95% CI]",
    "p",
    "p (Holm)",
    "growth spike by stage",
)


def budget_name(budget: float) -> str:
    return f"budget {budget:g}x"


def arms_table(arms: dict[str, ArmRuns], comparison: FinalComparison, budget: float) -> Table:
    rows = []
    adjusted = comparison.holm()
    described = {arm.name: arm for arm in ARMS}
    for name, runs in arms.items():
        arm = described[name]
        summaries = [run.summary() for run in runs.runs]
        last = summaries[0][-1]
        diff = comparison.differences.get(name)
        rows.append(
            [
                name,
                arm.operator,
                arm.old_blocks,
                f"{runs.lr:g}",
                len(summaries[0]),
                last.tokens,
                f"{statistics.fmean(comparison.flops[name]):.3e} ({comparison.flops_ratio(name):.3f}x)",
                " / ".join(f"{ratio:.3g}" for ratio in runs.runs[0].tokens_per_param()),
                " / ".join(f"{s.trainable_params / 1e6:.2f}M" for s in summaries[0]),
                mean_sd_text([sum(s.wall_s for s in summary) for summary in summaries], 0),
                mean_sd_text(comparison.losses[name]),
                diff.cell() if diff else None,
                p_cell(diff.p) if diff else None,
                p_cell(adjusted.get(name)),
                _spikes(runs),
            ]
        )
    seed = arms[REFERENCE].sweep_seed
    return Table(
        f"Growth operators at equal training FLOPs, {budget_name(budget)}",
        list(ARMS_COLUMNS),
        rows,
        "Final val loss: nats/token on the held-out windows, each run's last validation, at the end of its own "
        "schedule (learning rate fully decayed), mean ± sd over "
        f"{len(arms[REFERENCE].runs)} seed(s); Δ paired by seed with a 95% t interval, p two-sided paired t-test "
        "(negative: better than monolithic); p (Holm): adjusted for comparing every arm with monolithic "
        "(Holm-Bonferroni over the arms, the p the verdict uses). Training FLOPs: mean over seeds, and the mean "
        "ratio to monolithic's (stage lengths are whole optimizer steps). "
        f"LR: peak rate chosen by seed {seed}'s final validation loss at this budget (a seed no evaluated run uses; "
        "each arm's rates in the sweep table: rates past a winning edge of its grid are tried); warm-up is the "
        "same number of tokens in every stage; every stage starts a fresh AdamW (no optimizer state carried across "
        "growth). Growth spike: "
        "validation loss right after the new blocks are added minus the previous stage's final loss. Wall: "
        "training time, validation included, on this machine. Tokens per param: training tokens over the "
        "trainable parameters of the stage that trains the most, and over the final model's non-embedding "
        "parameters (blocks and norms; the input embedding and LM head left out).",
    )


def ladder_table(comparisons: dict[float, FinalComparison]) -> Table:
    """Each arm's difference to monolithic at every budget: does a lead shrink, hold or grow?"""
    budgets = list(comparisons)
    first = comparisons[budgets[0]]
    columns = ["arm"]
    for b in budgets:
        columns += [f"{b:g}x: {c}" for c in ("FLOPs", "final val loss", "Δ vs monolithic [95% CI]", "p (Holm)")]
    rows = []
    for arm in first.losses:
        row = [arm]
        for b in budgets:
            c = comparisons[b]
            diff = c.differences.get(arm)
            row += [
                f"{statistics.fmean(c.flops[arm]):.3e}",
                mean_sd_text(c.losses[arm]),
                diff.cell() if diff else None,
                p_cell(c.holm().get(arm)),
            ]
        rows.append(row)
    seeds = len(first.losses[first.reference])
    return Table(
        "Growth against monolithic by budget (final losses only)",
        columns,
        rows,
        f"Every cell compares runs that each ran their own complete schedule for that budget (stage lengths and "
        f"warm-up scaled with it, learning rate re-chosen per budget); Bx: B times the base budget; final "
        f"validation loss mean ± sd over {seeds} "
        "seed(s), Δ paired by seed with a 95% t interval, p Holm-adjusted over the arms at that budget.",
    )


def verdict(comparison: FinalComparison, seeds: int) -> str:
    """Arms better than the reference with Holm-adjusted p < 0.05 (the best of several arms at a raw p < 0.05
    would be chosen by chance more often than 1 time in 20)."""
    adjusted = comparison.holm()
    winners = [
        arm
        for arm, diff in comparison.differences.items()
        if diff.mean < 0 and adjusted[arm] is not None and adjusted[arm] < 0.05
    ]
    rule = f"Holm-adjusted p < 0.05 over the {len(adjusted)} arms compared"
    if seeds < 5:
        return f"{seeds} seed(s): too few to call a winner (the study's rule needs {rule}, over at least 5 seeds)."
    if not winners:
        return f"No arm beats monolithic training at equal FLOPs with {rule}, over {seeds} seeds."
    return ", ".join(winners) + f" beat(s) monolithic training at equal FLOPs with {rule}, over {seeds} seeds."
