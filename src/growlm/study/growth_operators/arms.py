"""The growth-operators study's arms, scales and options, and each arm's config at a scale and budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from growlm.config import Patch, RunConfig, combine
from growlm.errors import GrowlmError
from growlm.study.options import StudyOptions, option
from growlm.study.runs import configure, read_config_data
from growlm.study.scales import BINARY, PAPER, SMOKE, StudyScale, stage_tokens, train
from growlm.study.sweep import refuse_lr_override

LATER = (1, 2)  # the stages that grow on top of trained blocks


def later(**stage: object) -> Patch:
    """A patch giving the later stages these settings."""
    return {"growth": {"stages": {k: dict(stage) for k in LATER}}}


@dataclass(frozen=True)
class Arm:
    name: str
    operator: str  # growth.init of the new blocks
    old_blocks: str  # what the earlier blocks do after growth
    patch: Patch = field(default_factory=dict)
    monolithic: bool = False
    final_phase: float = 0.0  # share of the FLOPs spent in a last phase that trains all nine blocks


ARMS = (
    Arm("monolithic", "–", "– (9 blocks from the start)", monolithic=True),
    Arm("paper", "random", "frozen"),
    Arm("identity", "identity", "frozen", {"growth": {"init": "identity"}}),
    Arm("copy_top", "copy_top", "frozen", {"growth": {"init": "copy_top"}}),
    Arm("stack", "stack", "frozen", {"growth": {"init": "stack"}}),
    Arm("progressive", "random", "trained at 0.1 x LR", later(old_blocks_lr_scale=0.1)),
    Arm("paper+all-blocks", "random", "frozen, then all trained (last 20% of FLOPs)", final_phase=0.2),
    Arm("lora", "random", "LoRA (budget 1.1 x stage 1)", combine({"growth": {"budget_factor": 1.1}}, later(lora=True))),
    Arm(
        "gstack",
        "stack",
        "trained fully (Gstack)",
        combine({"growth": {"init": "stack"}}, later(train_old_blocks=True)),
    ),
)
REFERENCE = "monolithic"
LADDER_ARMS = ("monolithic", "paper", "lora", "progressive", "gstack")  # a ladder's arms unless --arms says


@dataclass(frozen=True, kw_only=True)
class Scale(StudyScale):
    monolithic_steps: int  # the base budget: this many monolithic optimizer steps (a ladder's budget 1)
    ladder_seeds: int  # the default seeds with more than one budget
    edge_steps: int = 3  # rates past a winning grid edge the sweep may try (sweep.tuned_arm's extend)


SCALES = {
    # d_model 128, 8 sequences per step: a ladder 0.25, 1, 4 of five arms x 3 seeds in ~3 h on 2 cores (2.8 h measured)
    "cpu": Scale(
        patch={
            "model": {"d_model": 128},
            "train": {
                "batch_size": 8,
                "eval_every": 32,
                "eval_batches": 8,
                "checkpoint_every": 1000,
                "log_every": 8,
                "warmup_tokens": 4096,
            },
        },
        about="2 CPU cores, about 40 min (with --budgets 0.25,1,4 about 3 h)",
        monolithic_steps=88,
        lrs=(1.5e-3, 3e-3, 6e-3),
        seeds=5,
        ladder_seeds=3,
    ),
    "paper": Scale(
        patch=combine(PAPER, train(warmup_tokens=10_000_000)),
        about="the paper's sizes, for GPUs",
        monolithic_steps=27_466,
        lrs=(1.5e-4, 3e-4, 6e-4),
        seeds=3,
        ladder_seeds=3,
    ),
    # two rates: a sweep, at test cost
    "smoke": Scale(
        patch=combine(SMOKE, train(warmup_tokens=512)),
        about="tiny, seconds, to check an install",
        monolithic_steps=12,
        lrs=(1e-3, 3e-3),
        seeds=2,
        ladder_seeds=2,
        edge_steps=1,
    ),
}


def parse_budgets(text: str) -> tuple[float, ...]:
    """A --budgets value: distinct positive multiples of the base budget (growth-operators and width-growth)."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise GrowlmError(f"`budgets` {text!r}: give numbers separated by commas, e.g. 0.25,1,4") from None
    if any(not v > 0 for v in values) or len(set(values)) < len(values):
        raise GrowlmError(f"`budgets` {text!r}: give distinct positive multiples of the base budget")
    return values


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True, kw_only=True)
class GrowthOptions(StudyOptions):
    substrate: str = option("visual", "the frozen substrate every arm uses", choices=("visual", "binary"))
    budgets: tuple[float, ...] = option(
        (1.0,),
        "a budget ladder, multiples of the scale's base budget (e.g. 0.25,1,4): every arm trains a complete "
        "schedule per budget and is compared by final losses at each",
        parse=parse_budgets,
        metavar="B,B,...",
    )
    arms: tuple[str, ...] = option(
        (),
        "the arms to train, monolithic among them (default: all of them for one budget; "
        + ", ".join(LADDER_ARMS)
        + " for a ladder)",
        parse=parse_names,
        metavar="A,A,...",
    )


def default_seeds(opts: GrowthOptions) -> int:
    return SCALES[opts.scale].seeds if len(opts.budgets) == 1 else SCALES[opts.scale].ladder_seeds


def chosen_arms(names: tuple[str, ...], budgets: tuple[float, ...]) -> tuple[Arm, ...]:
    """The arms --arms names (every arm for one budget, LADDER_ARMS for a ladder, when it names none)."""
    known = {arm.name: arm for arm in ARMS}
    names = names or (tuple(known) if len(budgets) == 1 else LADDER_ARMS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GrowlmError(f"`arms` {','.join(unknown)}: no such arm; choose from {', '.join(known)}")
    if REFERENCE not in names:
        raise GrowlmError(f"`arms` must include {REFERENCE}: every arm is compared with it")
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


def arm_config(arm: Arm, scale: str, sets: Sequence[str], substrate: str, budget: float = 1.0) -> RunConfig:
    """The arm at this scale and budget (x the base) with its stage tokens solved for the monolithic arm's FLOPs
    and its warm-up scaled with the budget, so that every budget runs the same schedule shape to its end."""
    from growlm.train.costs import stage_shapes

    common = combine(SCALES[scale].patch, BINARY if substrate == "binary" else {})
    common = combine(common, train(warmup_tokens=max(1, round(common["train"]["warmup_tokens"] * budget))))
    mono = configure(arm_data(ARMS[0]), common, sets=sets, source="growth-operators (monolithic)")
    patch = combine(common, arm.patch, {"name": f"growth-{arm.name}"})
    unit = mono.train.batch_size * mono.model.context
    target = max(1, round(SCALES[scale].monolithic_steps * budget)) * unit * stage_shapes(mono)[0][0]
    data = arm_data(arm)
    source = f"growth-operators ({arm.name})"
    cfg = configure(data, patch, sets=sets, source=source)
    steps = matched_steps([f for f, _ in stage_shapes(cfg)], target, unit, arm.final_phase)
    return configure(data, patch, stage_tokens([s * unit for s in steps]), sets=sets, source=source)


def base_config(opts: GrowthOptions) -> RunConfig:
    """Checks that the overrides, budgets and arms suit every run before anything is trained."""
    refuse_lr_override(opts.sets, "growth-operators")
    budgets = opts.budgets
    if not budgets or any(b <= 0 for b in budgets) or len(set(budgets)) < len(budgets):
        raise GrowlmError("`budgets`: give distinct positive multiples of the base budget, e.g. 0.25,1,4")
    if opts.substrate not in ("visual", "binary"):
        raise GrowlmError(f"`substrate` {opts.substrate!r}: growth-operators takes visual or binary")
    arms = chosen_arms(opts.arms, budgets)
    return [arm_config(arm, opts.scale, opts.sets, opts.substrate, b) for arm in arms for b in budgets][0]
