"""The growth-operators study: which way of growing a model to nine blocks pays, at the SAME training FLOPs as
training the nine blocks monolithically.

Every arm ends at depth 9 on the same frozen substrate (visual; --substrate binary for the bit code), tokenizer
and shards. The growth arms add 3 blocks per stage (1-3, 4-6, 7-9) and differ in how the new blocks start
(growth.init) and in what the earlier blocks do afterwards; docs/GROWTH.md describes each operator and its source.
A cheaper schedule spends the monolithic arm's FLOPs on more tokens: each arm's stage tokens are solved from its
exact FLOPs per token (growlm.train.costs.stage_shapes), equal tokens per growth stage, rounded to whole steps.
Every arm's learning rate is chosen by the same sweep (study/sweep.py); every stage of every arm warms up over the
same number of tokens; each stage starts a fresh AdamW (the trainer's rule), which the table states.

Output: the arms at equal FLOPs (final loss, paired difference to monolithic with a 95% interval and p-value,
wall time, trainable parameters and growth spike per stage, tokens), the LR sweep, and validation loss against
cumulative FLOPs with ± sd bands over seeds (a plot along the runs: a point before a run's end is read
mid-schedule and is not compared).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from growlm.analysis.plots import plot_loss_bands
from growlm.analysis.tables import Table
from growlm.config import RunConfig
from growlm.study.matched import Comparison, bands, compare, holm, mean_sd_text, p_cell, val_curve
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import configure, read_config_data, shared_inputs
from growlm.study.scales import BINARY, PAPER, SMOKE
from growlm.study.sweep import ArmRuns, refuse_lr_override, sweep_table, tuned_arm

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
)
REFERENCE = "monolithic"


@dataclass(frozen=True)
class Scale:
    values: dict[str, object]
    monolithic_steps: int  # the budget: this many monolithic optimizer steps
    lrs: tuple[float, ...]
    seeds: int


SCALES = {
    "smoke": Scale({**SMOKE, "train.warmup_tokens": 512}, 12, (1e-3, 3e-3), 2),  # two rates: a sweep, at test cost
    "cpu": Scale(
        {
            "train.eval_every": 8,
            "train.eval_batches": 4,
            "train.checkpoint_every": 1000,
            "train.log_every": 8,
            "train.warmup_tokens": 8192,
        },
        72,
        (1.5e-3, 3e-3, 6e-3),
        5,
    ),
    "paper": Scale({**PAPER, "train.warmup_tokens": 10_000_000}, 27_466, (1.5e-4, 3e-4, 6e-4), 3),
}


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


def arm_config(arm: Arm, scale: str, sets: list[str], substrate: str) -> RunConfig:
    """The arm at this scale with its stage tokens solved for the monolithic arm's FLOPs."""
    from growlm.train.costs import stage_shapes

    common = {**SCALES[scale].values, **(BINARY if substrate == "binary" else {})}
    mono = configure(arm_data(ARMS[0]), common, sets, "growth-operators (monolithic)")
    values = {**common, **arm.values, "name": f"growth-{arm.name}"}
    unit = mono.train.batch_size * mono.model.context
    target = SCALES[scale].monolithic_steps * unit * stage_shapes(mono)[0][0]
    data = arm_data(arm)
    cfg = configure(data, values, sets, f"growth-operators ({arm.name})")
    steps = matched_steps([f for f, _ in stage_shapes(cfg)], target, unit, arm.final_phase)
    return configure(
        data,
        {**values, **{f"growth.stages.{k}.tokens": s * unit for k, s in enumerate(steps)}},
        sets,
        f"growth-operators ({arm.name})",
    )


def base_config(scale: str, sets: list[str], substrate: str = "visual") -> RunConfig:
    """Checks that --set suits every arm before anything is trained."""
    refuse_lr_override(sets, "growth-operators")
    return [arm_config(arm, scale, sets, substrate) for arm in ARMS][0]


def train_arms(opts: StudyOptions) -> dict[str, ArmRuns]:
    scale = SCALES[opts.scale]
    configs = {arm.name: arm_config(arm, opts.scale, opts.sets, opts.substrate) for arm in ARMS}
    shared = shared_inputs(configs["paper"], opts.root / "inputs")
    return {
        arm.name: tuned_arm(
            opts.root,
            arm.name,
            scale.lrs,
            opts.seed_list,
            lambda lr, seed, cfg=configs[arm.name]: configure(
                cfg, {**shared, "train.lr": lr, "train.seed": seed, "name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"}
            ),
        )
        for arm in ARMS
    }


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
    "read at (share of own schedule)",
    "trainable params by stage",
    "wall (s)",
    "Δ vs monolithic [95% CI]",
    "p",
    "p (Holm)",
    "growth spike by stage",
)


def arms_table(arms: dict[str, ArmRuns], comparison: Comparison, lrs: tuple[float, ...]) -> Table:
    rows = []
    mono_flops = arms[REFERENCE].runs[0].summary()[-1].flops
    adjusted = final_holm(comparison)
    for arm in ARMS:
        runs = arms[arm.name]
        summaries = [run.summary() for run in runs.runs]
        last = summaries[0][-1]
        diff = comparison.differences.get(arm.name, [None])[-1]
        rows.append(
            [
                arm.name,
                arm.operator,
                arm.old_blocks,
                f"{runs.lr:g}",
                len(summaries[0]),
                last.tokens,
                f"{last.flops:.3e} ({last.flops / mono_flops:.3f}x)",
                " / ".join(f"{ratio:.3g}" for ratio in runs.runs[0].tokens_per_param()),
                f"{comparison.shares[arm.name]:.1%}",
                " / ".join(f"{s.trainable_params / 1e6:.1f}M" for s in summaries[0]),
                mean_sd_text([sum(s.wall_s for s in summary) for summary in summaries], 0),
                mean_sd_text(comparison.losses[arm.name][-1]),
                diff.cell() if diff else None,
                p_cell(diff.p) if diff else None,
                p_cell(adjusted.get(arm.name)),
                _spikes(runs),
            ]
        )
    budget = comparison.budgets[-1]
    return Table(
        "Growth operators at equal training FLOPs",
        [*ARMS_COLUMNS[:10], f"val loss at {budget:.3e} FLOPs", *ARMS_COLUMNS[10:]],
        rows,
        f"Val loss: nats/token on the held-out windows, read at the smallest total FLOPs of any arm (the share of "
        "each arm's own schedule it had run then is given; below 99%, its learning rate had not fully decayed), "
        "mean ± sd over "
        f"{len(arms[REFERENCE].runs)} seed(s); Δ paired by seed with a 95% t interval, p two-sided paired t-test "
        f"(negative: better than monolithic); p (Holm): adjusted for comparing every arm with monolithic "
        "(Holm-Bonferroni over the arms, the p the verdict uses). "
        f"LR: peak rate chosen from {', '.join(f'{lr:g}' for lr in lrs)} on "
        "seed 0's final validation loss (table below); warm-up is the same number of tokens in every stage; every "
        "stage starts a fresh AdamW (no optimizer state carried across growth). Growth spike: validation loss "
        "right after the new blocks are added minus the previous stage's final loss. Wall: training time, "
        "validation included, on this machine. Tokens per param: training tokens over the trainable parameters "
        "of the stage that trains the most, and over the final model's non-embedding parameters (blocks and "
        "norms; the input embedding and LM head left out).",
    )


def final_holm(comparison: Comparison) -> dict[str, float | None]:
    """Holm-adjusted p of every arm's difference to the reference at the whole budget."""
    return holm({arm: diffs[-1].p for arm, diffs in comparison.differences.items()})


def verdict(comparison: Comparison, seeds: int) -> str:
    """Arms better than the reference at the whole budget with Holm-adjusted p < 0.05 (the best of several arms
    at a raw p < 0.05 would be chosen by chance more often than 1 time in 20)."""
    adjusted = final_holm(comparison)
    winners = [
        arm
        for arm, diffs in comparison.differences.items()
        if diffs[-1].mean < 0 and adjusted[arm] is not None and adjusted[arm] < 0.05
    ]
    rule = f"Holm-adjusted p < 0.05 over the {len(adjusted)} arms compared"
    if seeds < 5:
        return f"{seeds} seed(s): too few to call a winner (the study's rule needs {rule}, over at least 5 seeds)."
    if not winners:
        return f"No arm beats monolithic training at equal FLOPs with {rule}, over {seeds} seeds."
    return ", ".join(winners) + f" beat(s) monolithic training at equal FLOPs with {rule}, over {seeds} seeds."


def run(opts: StudyOptions) -> Path:
    scale = SCALES[opts.scale]
    arms = train_arms(opts)
    curves = {name: [val_curve(run.metrics()) for run in runs.runs] for name, runs in arms.items()}
    comparison = compare(curves, REFERENCE)
    text = verdict(comparison, opts.seeds)
    reference = arms["paper"].runs[0].config
    description = (
        f"Growth operators and schedules against monolithic training at equal training FLOPs, "
        f"{opts.scale} scale: {opts.substrate} substrate (frozen), d_model {reference.model.d_model}, "
        f"context {reference.model.context}, data {', '.join(reference.data.sources)}, depth 9 for every "
        f"arm, {opts.seeds} seed(s) per arm. Verdict: {text}"
    )
    tables = [arms_table(arms, comparison, scale.lrs), sweep_table(arms, scale.lrs)]
    figures = {"val-loss-vs-flops": plot_loss_bands({name: bands(c) for name, c in curves.items()})}
    runs = {spec.label: spec.path for arm in arms.values() for spec in arm.runs}
    return write_study(
        opts.root,
        "growth-operators",
        description,
        runs,
        tables,
        figures,
        {"comparison": comparison.to_json(), "verdict": text},
    )
