"""The width-growth study's tables: the arms at one budget (with what happens at each growth), the secondary
contrasts between width arms, and the verdict computed from them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from growlm.analysis.tables import Table
from growlm.study.matched import FinalComparison, Paired, mean_sd_text, p_cell, paired
from growlm.study.runs import RunSpec
from growlm.study.sweep import HELD_OUT_SEED, ArmRuns
from growlm.study.width_growth.arms import REFERENCE, WIDTH_OPERATORS, Arm
from growlm.train.records import MetricRow, StageStart, ValRow

# A function-preserving growth leaves the loss unchanged up to float rounding (~1e-6 nats): a validation within
# this of the pre-growth loss counts as back at it.
RECOVERY_TOL = 1e-4
ALPHA = 0.05


def budget_name(budget: float) -> str:
    return f"budget {budget:g}x"


def recovery_steps(metrics: Sequence[MetricRow], before: Sequence[float]) -> list[int | None]:
    """Per growth stage k (1, 2, ...): optimizer steps from its start to its first validation at or below
    `before[k - 1]` (the previous stage's final loss) + RECOVERY_TOL, the right-after-growth validation counting
    as step 0; None when no validation of the stage gets there."""
    starts = {r.stage: r.step for r in metrics if isinstance(r, StageStart)}
    out: list[int | None] = []
    for k, loss in enumerate(before, start=2):  # ValRow.stage is 1-based: growth stage k is stage k + 1
        rows = [r for r in metrics if isinstance(r, ValRow) and r.stage == k]
        out.append(next((r.step - starts[k] for r in rows if r.val_loss <= loss + RECOVERY_TOL), None))
    return out


def _recovery(arm: ArmRuns) -> str | None:
    """Mean over seeds of the steps to the pre-growth loss, per growth step."""
    per_seed = [recovery_steps(run.metrics(), [s.val_loss for s in run.summary()[:-1]]) for run in arm.runs]
    cells = []
    for steps in zip(*per_seed):
        found = [s for s in steps if s is not None]
        if not found:
            cells.append("not within the stage")
            continue
        missing = len(steps) - len(found)
        note = f" ({missing} seed(s) not within the stage)" if missing else ""
        cells.append(f"{statistics.fmean(found):.0f}{note}")
    return " / ".join(cells) or None


def _jumps(arm: ArmRuns) -> str | None:
    """Per growth step: validation loss right after growth minus the previous stage's final loss (mean)."""
    summaries = [run.summary() for run in arm.runs]
    cells = [
        statistics.fmean(s[k].val_loss_at_start - s[k - 1].val_loss for s in summaries)
        for k in range(1, len(summaries[0]))
    ]
    return " / ".join(f"{c:+.4f}" for c in cells) or None


def _growth_at(run: RunSpec) -> str:
    """Where each growth happened: the cumulative training FLOPs at the end of the stage before, of the total."""
    summary = run.summary()
    return " / ".join(f"{s.flops / summary[-1].flops:.0%}" for s in summary[:-1]) or "–"


def non_embedding_params(run: RunSpec) -> list[int]:
    """Per stage: the blocks' and the final norm's parameters (the substrate embedding and the LM head left out)."""
    from growlm.train.memory import block_params

    cfg = run.config
    depths = accumulate(stage.add_blocks for stage in cfg.growth.stages)
    return [depth * block_params(m) + m.d_model for depth, m in zip(depths, cfg.stage_models())]


def _param_growth(run: RunSpec) -> str:
    params = non_embedding_params(run)
    return f"{params[-1] / params[0]:.2f}x ({params[0] / 1e6:.3f}M → {params[-1] / 1e6:.3f}M)"


ARMS_COLUMNS = (
    "arm",
    "what grows",
    "operator",
    "old weights",
    "growth at (% of FLOPs)",
    "parameter growth (non-embedding, final / stage 1)",
    "LR",
    "training FLOPs (x monolithic)",
    "tokens per param (trainable / non-embedding)",
    "final val loss",
    "Δ vs monolithic [95% CI]",
    "p",
    "p (Holm)",
    "loss jump at growth",
    "steps back to the pre-growth loss",
)


def arms_table(runs: dict[str, ArmRuns], arms: dict[str, Arm], comparison: FinalComparison, budget: float) -> Table:
    rows = []
    adjusted = comparison.holm()
    for name, arm_runs in runs.items():
        arm, diff = arms[name], comparison.differences.get(name)
        first = arm_runs.runs[0]
        rows.append(
            [
                arm.label,
                arm.grows,
                arm.operator,
                arm.old_weights,
                _growth_at(first),
                _param_growth(first),
                f"{arm_runs.lr:g}",
                f"{statistics.fmean(comparison.flops[name]):.3e} ({comparison.flops_ratio(name):.3f}x)",
                " / ".join(f"{ratio:.3g}" for ratio in first.tokens_per_param()),
                mean_sd_text(comparison.losses[name]),
                diff.cell() if diff else None,
                p_cell(diff.p) if diff else None,
                p_cell(adjusted.get(name)),
                _jumps(arm_runs),
                _recovery(arm_runs),
            ]
        )
    eval_every = runs[REFERENCE].runs[0].config.train.eval_every
    seed = runs[REFERENCE].sweep_seed
    sweep = "a seed no evaluated run uses" if seed == HELD_OUT_SEED else "one rate: nothing chosen, seed 0's run"
    return Table(
        f"Growth in width and depth at equal training FLOPs, {budget_name(budget)}",
        list(ARMS_COLUMNS),
        rows,
        "Final val loss: nats/token on the held-out windows, each run's last validation, at the end of its own "
        f"schedule, mean ± sd over {len(runs[REFERENCE].runs)} seed(s); Δ paired by seed with a 95% t interval, p "
        "two-sided paired t-test (negative: better than monolithic); p (Holm): adjusted over every arm compared "
        "with monolithic. Training FLOPs: mean over seeds and the mean ratio to monolithic's (whole optimizer "
        f"steps). LR: peak rate chosen by seed {seed}'s final loss ({sweep}; the sweep table). Growth at: "
        "cumulative training FLOPs at the end of the stage before the "
        "growth, of the run's total. Parameter growth: the final model's non-embedding parameters (the blocks and "
        "the final norm; the frozen substrate embedding and the LM head left out) over stage 1's. Tokens per "
        "param: training tokens over the trainable parameters of the stage that trains the most, and over the "
        "final model's non-embedding parameters. Loss jump: validation loss right after the growth minus the "
        "previous stage's final loss, mean over seeds, one value per growth. Steps back: optimizer steps from the "
        "growth to the first validation at or below the previous stage's final loss (+1e-4 nats, the rounding of "
        f"a function-preserving growth), mean over the seeds that got there; validations every {eval_every} "
        'steps, so this is resolved only to that; "not within the stage": no validation of the stage got there. '
        "A best-* arm varies the width arm in brackets, picked by the lowest mean final loss over these same "
        "seeds (a selection effect that favours the picked arm).",
    )


def _mean_of(rows: Sequence[Sequence[float]]) -> list[float]:
    return [statistics.fmean(values) for values in zip(*rows)]


def contrasts(losses: dict[str, list[float]], picked: str | None) -> dict[str, Paired]:
    """The secondary comparisons among the width arms present, paired by seed (raw p, not adjusted): does
    function preservation matter (zero and copy against random), frozen against training old weights, 4x against
    2x and growth at 50% against 25% of the FLOPs (both for the picked arm)."""
    out: dict[str, Paired] = {}
    modes = {"training": "", "frozen": "-frozen"}
    for mode, suffix in modes.items():
        zero, copy, random = (losses.get(f"width-{op}{suffix}") for op in WIDTH_OPERATORS)
        if zero and copy and random:
            out[f"(zero + copy) / 2 - random, old weights {mode}"] = paired(_mean_of([zero, copy]), random)
    by_mode = {mode: [losses.get(f"width-{op}{s}") for op in WIDTH_OPERATORS] for mode, s in modes.items()}
    if all(all(arms) for arms in by_mode.values()):
        out["frozen - training old weights, mean of zero, copy, random"] = paired(
            _mean_of(by_mode["frozen"]), _mean_of(by_mode["training"])
        )
    if picked and "best-4x" in losses:
        out[f"4x - 2x ({picked})"] = paired(losses["best-4x"], losses[picked])
    if picked and "best-late" in losses:
        out[f"growth at 50% - at 25% of FLOPs ({picked})"] = paired(losses["best-late"], losses[picked])
    return out


def contrast_table(found: dict[str, Paired], budget: float) -> Table:
    rows = [[name, d.cell(), p_cell(d.p), d.n] for name, d in found.items()]
    return Table(
        f"Width arms against each other, {budget_name(budget)}",
        ["contrast", "Δ final val loss [95% CI]", "p (raw)", "seeds"],
        rows,
        "Δ: the first side minus the second, final validation losses paired by seed (a mean over arms is taken per "
        "seed first), with a 95% t interval and a two-sided paired t-test; p not adjusted over these secondary "
        "contrasts. 4x and 50% vary the width arm with the lowest mean final loss on these same seeds, so the "
        "2x / 25% side was picked for being low: a selection effect against the variant.",
    )


@dataclass(frozen=True)
class Verdict:
    comparison: FinalComparison
    contrasts: dict[str, Paired]
    picked: str | None
    seeds: int

    def text(self) -> str:
        if self.seeds < 2:
            return (
                f"{self.seeds} seed: no test is possible (a paired interval needs at least 2 seeds); the numbers "
                "are single runs and show no difference as real."
            )
        parts = [self._against_reference()]
        if self.picked:
            parts.append(
                f"Best width arm at this budget: {self.picked} (lowest mean final loss on the same seeds the "
                "comparison uses: a selection effect)."
            )
        if self.contrasts:
            parts.append(
                "Secondary contrasts (raw p, not adjusted over the "
                f"{len(self.contrasts)}): " + "; ".join(_contrast_text(n, d) for n, d in self.contrasts.items()) + "."
            )
        return " ".join(parts)

    def _against_reference(self) -> str:
        adjusted = self.comparison.holm()
        tested = sum(p is not None for p in adjusted.values())
        rule = f"Holm-adjusted p < {ALPHA} over the {tested} arms compared with {REFERENCE}, {self.seeds} seeds"
        shown = {arm for arm, p in adjusted.items() if p is not None and p < ALPHA}
        significant = {arm: d for arm, d in self.comparison.differences.items() if arm in shown}
        better = [arm for arm, d in significant.items() if d.mean < 0]
        worse = [arm for arm, d in significant.items() if d.mean > 0]
        return (
            f"Better than {REFERENCE} at equal FLOPs ({rule}): {', '.join(better) or 'none'}; worse: "
            f"{', '.join(worse) or 'none'}; the other arms show no difference at this level (which is not "
            "evidence that there is none)."
        )


def _contrast_text(name: str, d: Paired) -> str:
    if d.p is None:
        return f"{name} {d.cell()} (no p-value)"
    reading = f"lower at p < {ALPHA}" if d.mean < 0 else f"higher at p < {ALPHA}"
    return f"{name} {d.cell()}, p {p_cell(d.p)}: " + (reading if d.p < ALPHA else "no difference shown")
