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
from dataclasses import dataclass, field
from pathlib import Path

from growlm.analysis.plots import plot_ladder, plot_loss_bands
from growlm.analysis.tables import Table
from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.study.matched import FinalComparison, bands, compare_final, final_rows, mean_sd_text, p_cell, val_curve
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import configure, read_config_data, shared_inputs
from growlm.study.scales import BINARY, PAPER, SMOKE
from growlm.study.sweep import HELD_OUT_SEED, ArmRuns, refuse_lr_override, sweep_table, tuned_arm

LATER = (1, 2)  # the stages that grow on top of trained blocks


def later(key: str, value: object) -> dict[str, object]:
    return {f"growth.stages.{k}.{key}": value for k in LATER}


@dataclass(frozen=True)
class Arm:
    name: str
    operator: str  # growth.init of the new blocks
    old_blocks: str  # what the earlier blocks do after growth
    values: dict[str, object] = field(default_factory=dict)
    monolithic: bool = False
    final_phase: float = 0.0  # share of the FLOPs spent in a last phase that trains all nine blocks


ARMS = (
    Arm("monolithic", "–", "– (9 blocks from the start)", monolithic=True),
    Arm("paper", "random", "frozen"),
    Arm("identity", "identity", "frozen", {"growth.init": "identity"}),
    Arm("copy_top", "copy_top", "frozen", {"growth.init": "copy_top"}),
    Arm("stack", "stack", "frozen", {"growth.init": "stack"}),
    Arm("progressive", "random", "trained at 0.1 x LR", later("old_blocks_lr_scale", 0.1)),
    Arm("paper+all-blocks", "random", "frozen, then all trained (last 20% of FLOPs)", final_phase=0.2),
    Arm("lora", "random", "LoRA (budget 1.1 x stage 1)", {"growth.budget_factor": 1.1, **later("lora", True)}),
    Arm("gstack", "stack", "trained fully (Gstack)", {"growth.init": "stack", **later("train_old_blocks", True)}),
)
REFERENCE = "monolithic"
LADDER_ARMS = ("monolithic", "paper", "lora", "progressive", "gstack")  # a ladder's arms unless --arms says


@dataclass(frozen=True)
class Scale:
    values: dict[str, object]
    monolithic_steps: int  # the base budget: this many monolithic optimizer steps (a ladder's budget 1)
    lrs: tuple[float, ...]
    seeds: int
    ladder_seeds: int  # the default seeds with more than one budget
    edge_steps: int = 3  # rates past a winning grid edge the sweep may try (sweep.tuned_arm's extend)


SCALES = {
    # two rates: a sweep, at test cost
    "smoke": Scale({**SMOKE, "train.warmup_tokens": 512}, 12, (1e-3, 3e-3), 2, 2, edge_steps=1),
    # d_model 128, 8 sequences per step: a ladder 0.25, 1, 4 of five arms x 3 seeds in ~3 h on 2 cores (2.8 h measured)
    "cpu": Scale(
        {
            "model.d_model": 128,
            "train.batch_size": 8,
            "train.eval_every": 32,
            "train.eval_batches": 8,
            "train.checkpoint_every": 1000,
            "train.log_every": 8,
            "train.warmup_tokens": 4096,
        },
        88,
        (1.5e-3, 3e-3, 6e-3),
        5,
        3,
    ),
    "paper": Scale({**PAPER, "train.warmup_tokens": 10_000_000}, 27_466, (1.5e-4, 3e-4, 6e-4), 3, 3),
}


def default_seeds(scale: str, budgets: tuple[float, ...]) -> int:
    return SCALES[scale].seeds if len(budgets) == 1 else SCALES[scale].ladder_seeds


def chosen_arms(names: tuple[str, ...], budgets: tuple[float, ...]) -> tuple[Arm, ...]:
    """The arms --arms names (every arm for one budget, LADDER_ARMS for a ladder, when it names none)."""
    known = {arm.name: arm for arm in ARMS}
    names = names or (tuple(known) if len(budgets) == 1 else LADDER_ARMS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GrowlmError(f"--arms {','.join(unknown)}: no such arm; choose from {', '.join(known)}")
    if REFERENCE not in names:
        raise GrowlmError(f"--arms must include {REFERENCE}: every arm is compared with it")
    return tuple(arm for arm in ARMS if arm.name in names)


def arm_data(arm: Arm) -> dict:
    """The arm's config as TOML data: the monolithic or the constructive nine-layer config, plus a last stage
    without new blocks that trains all of them where the arm has one."""
    data = read_config_data("nine-layer-monolithic-frozen.toml" if arm.monolithic else "nine-layer-constructive.toml")
    if arm.final_phase:
        data["growth"]["stages"].append({"add_blocks": 0, "tokens": 1, "train_old_blocks": True})
    return data


def matched_steps(per_token: list[float], target: float, unit: int, final_phase: float) -> list[int]:
    """Optimizer steps per stage spending `target` FLOPs: equal tokens in the growth stages, `final_phase` of the
    FLOPs in the last stage if the arm has such a phase; the last stage absorbs the rounding."""
    growth = per_token[:-1] if final_phase else per_token
    per_stage = target * (1 - final_phase) / sum(growth) / unit
    steps = [max(1, round(per_stage))] * len(growth) + ([0] if final_phase else [])
    spent = sum(s * unit * f for s, f in zip(steps[:-1], per_token[:-1]))
    steps[-1] = max(1, round((target - spent) / (unit * per_token[-1])))
    return steps


def arm_config(arm: Arm, scale: str, sets: list[str], substrate: str, budget: float = 1.0) -> RunConfig:
    """The arm at this scale and budget (x the base) with its stage tokens solved for the monolithic arm's FLOPs
    and its warm-up scaled with the budget, so that every budget runs the same schedule shape to its end."""
    from growlm.train.costs import stage_shapes

    common = {**SCALES[scale].values, **(BINARY if substrate == "binary" else {})}
    common["train.warmup_tokens"] = max(1, round(common["train.warmup_tokens"] * budget))
    mono = configure(arm_data(ARMS[0]), common, sets, "growth-operators (monolithic)")
    values = {**common, **arm.values, "name": f"growth-{arm.name}"}
    unit = mono.train.batch_size * mono.model.context
    target = max(1, round(SCALES[scale].monolithic_steps * budget)) * unit * stage_shapes(mono)[0][0]
    data = arm_data(arm)
    cfg = configure(data, values, sets, f"growth-operators ({arm.name})")
    steps = matched_steps([f for f, _ in stage_shapes(cfg)], target, unit, arm.final_phase)
    return configure(
        data,
        {**values, **{f"growth.stages.{k}.tokens": s * unit for k, s in enumerate(steps)}},
        sets,
        f"growth-operators ({arm.name})",
    )


def base_config(
    scale: str, sets: list[str], substrate: str = "visual", budgets: tuple[float, ...] = (1.0,), arms=()
) -> RunConfig:
    """Checks that --set, --budgets and --arms suit every run before anything is trained."""
    refuse_lr_override(sets, "growth-operators")
    if not budgets or any(b <= 0 for b in budgets) or len(set(budgets)) < len(budgets):
        raise GrowlmError("--budgets: give distinct positive multiples of the base budget, e.g. --budgets 0.25,1,4")
    configs = [arm_config(arm, scale, sets, substrate, b) for arm in chosen_arms(arms, budgets) for b in budgets]
    return configs[0]


def group(budget: float) -> str:
    """The runs of one budget live in STUDY/runs/budget-B/ARM/..."""
    return f"budget-{budget:g}"


def train_arms(opts: StudyOptions) -> dict[float, dict[str, ArmRuns]]:
    """Budget -> arm -> its tuned runs; the smallest budget first, so that a ladder cut short has its cheap rungs."""
    if opts.seeds > HELD_OUT_SEED:
        raise GrowlmError(f"--seeds {opts.seeds}: at most {HELD_OUT_SEED} (seed {HELD_OUT_SEED} tunes the rates)")
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
                    cfg, {**shared, "train.lr": lr, "train.seed": seed, "name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"}
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


def run(opts: StudyOptions) -> Path:
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
