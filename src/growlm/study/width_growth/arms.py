"""The width-growth study's arms, scales and options, and each arm's config at a scale and budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from growlm.config import ModelConfig, Patch, RunConfig, combine, parse_assignment
from growlm.errors import GrowlmError
from growlm.study.growth_operators.arms import ARMS as OPERATOR_ARMS
from growlm.study.growth_operators.arms import SCALES as OPERATOR_SCALES
from growlm.study.growth_operators.arms import arm_config, parse_budgets, parse_names
from growlm.study.options import StudyOptions, option
from growlm.study.runs import configure
from growlm.study.scales import StudyScale, stage_tokens
from growlm.study.sweep import refuse_lr_override

REFERENCE = "monolithic"
WIDTH_OPERATORS = ("zero", "copy", "random")
EARLY = 0.25  # the share of an arm's training FLOPs spent before it grows (best-late: LATE)
LATE = 0.5
BEST = ("best-4x", "best-late")  # trained after the six width arms of a budget, as the best of them


@dataclass(frozen=True)
class Arm:
    name: str
    grows: str  # what grows: "–" (monolithic), "depth", "width" or "depth + width"
    operator: str  # how the new weights start
    old_weights: str  # what the weights of before the growth do after it: "training", "frozen" or "–"
    width_init: str = ""  # growth.width_init of an arm that widens ("": a growth-operators arm, taken as it is)
    train_old: bool = True  # the widening stage's train_old_blocks
    factor: int = 2  # the final d_model over stage 0's
    at: float = EARLY  # the share of the training FLOPs spent in stage 0 (before the growth)
    first_blocks: int = 9  # stage 0's blocks; the rest are stacked at the growth (growth.init stack)
    picked: str = ""  # best-4x / best-late: the width arm it varies

    @property
    def label(self) -> str:
        """The arm's name in tables: a best arm says which width arm it varies."""
        return f"{self.name} ({self.picked})" if self.picked else self.name


def _width(operator: str, frozen: bool) -> Arm:
    name = f"width-{operator}" + ("-frozen" if frozen else "")
    return Arm(name, "width", operator, "frozen" if frozen else "training", operator, train_old=not frozen)


ARMS = (
    Arm("monolithic", "–", "– (9 blocks at full width from the start)", "–"),
    Arm("paper", "depth", "random (3 blocks per stage)", "frozen"),
    Arm("gstack", "depth", "stack (3 blocks per stage)", "training"),
    *(_width(op, False) for op in WIDTH_OPERATORS),
    *(_width(op, True) for op in WIDTH_OPERATORS),
    Arm("depth+width", "depth + width", "copy (width), stack (6 new blocks)", "training", "copy", first_blocks=3),
    Arm("best-4x", "width", "the best width arm's", "the best width arm's", factor=4),
    Arm("best-late", "width", "the best width arm's", "the best width arm's", at=LATE),
)
KNOWN = {arm.name: arm for arm in ARMS}
SIX = tuple(arm.name for arm in ARMS if arm.grows == "width" and arm.name not in BEST)  # the candidates for BEST


def best_variant(name: str, picked: Arm) -> Arm:
    """best-4x or best-late of the width arm `picked`: the same operator and old weights, a quarter width or a
    growth at half the FLOPs."""
    base = KNOWN[name]
    return dataclasses.replace(picked, name=name, factor=base.factor, at=base.at, picked=picked.name)


@dataclass(frozen=True, kw_only=True)
class Scale(StudyScale):
    base: str  # the growth-operators scale whose configs (patch, monolithic steps) every arm starts from
    sets: tuple[str, ...] = ()  # KEY=VALUE settings over it (smoke: a width whose quarter keeps a head, fewer tokens)
    budgets: tuple[float, ...] = (1.0,)  # the default --budgets
    base_budget: float = 1.0  # this scale's budget 1 in the base scale's budgets (smoke: fewer steps)
    edge_steps: int = 3  # rates past a winning grid edge the sweep may try


# smoke: 64 tokens a step and 9 monolithic steps (budget 1 is 0.75 of growth-operators' smoke budget), so that 12
# arms x 2 seeds fit a test; a fixed warm-up of 2 steps at every budget
SMOKE_SETS = (
    "model.d_model=64",
    "model.n_heads=4",
    "model.context=32",
    "train.batch_size=2",
    "train.warmup_tokens=128",
    "train.eval_every=3",
)
SCALES = {
    # growth-operators' cpu target (d_model 128, 4 heads, d_ff 384, 9 blocks), base budget and rates
    "cpu": Scale(
        patch=OPERATOR_SCALES["cpu"].patch,
        about="2 CPU cores, about 2 h (12 arms x 3 seeds at budgets 0.25 and 1, each swept)",
        base="cpu",
        lrs=OPERATOR_SCALES["cpu"].lrs,
        seeds=3,
        budgets=(0.25, 1.0),
    ),
    "paper": Scale(
        patch=OPERATOR_SCALES["paper"].patch,
        about="the paper's sizes (d_model 1024, 32 heads; half 512/16, quarter 256/8), for GPUs",
        base="paper",
        lrs=OPERATOR_SCALES["paper"].lrs,
        seeds=3,
    ),
    # target d_model 64 with 4 heads of 16 (half 32/2, quarter 16/1), one rate: every code path, at test cost
    "smoke": Scale(
        patch=combine(OPERATOR_SCALES["smoke"].patch, *(parse_assignment(a) for a in SMOKE_SETS)),
        about="tiny, a minute or two, to check an install",
        base="smoke",
        sets=SMOKE_SETS,
        base_budget=0.75,
        lrs=(3e-3,),
        seeds=2,
        edge_steps=0,
    ),
}


@dataclass(frozen=True, kw_only=True)
class WidthOptions(StudyOptions):
    budgets: tuple[float, ...] = option(
        (),
        "multiples of growth-operators' base budget (e.g. 0.25,1): every arm trains a complete schedule per budget "
        "and is compared by final losses at each (default: the scale's, cpu 0.25,1, else 1)",
        parse=parse_budgets,
        metavar="B,B,...",
    )
    arms: tuple[str, ...] = option(
        (),
        "the arms to train, monolithic among them (default: all of " + ", ".join(KNOWN) + "; best-4x and "
        "best-late vary the best of the width arms trained)",
        parse=parse_names,
        metavar="A,A,...",
    )


def budgets_of(opts: WidthOptions) -> tuple[float, ...]:
    return opts.budgets or SCALES[opts.scale].budgets


def chosen_arms(names: tuple[str, ...]) -> tuple[Arm, ...]:
    """The arms --arms names (all of them when it names none), in the study's order."""
    names = names or tuple(KNOWN)
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise GrowlmError(f"`arms` {','.join(unknown)}: no such arm; choose from {', '.join(KNOWN)}")
    if REFERENCE not in names:
        raise GrowlmError(f"`arms` must include {REFERENCE}: every arm is compared with it")
    if any(n in BEST for n in names) and not any(n in SIX for n in names):
        raise GrowlmError(f"`arms` {', '.join(BEST)} vary the best width arm: name at least one of {', '.join(SIX)}")
    return tuple(arm for arm in ARMS if arm.name in names)


def depth_config(name: str, scale: str, sets: Sequence[str], budget: float) -> RunConfig:
    """A growth-operators arm exactly as that study configures it (visual substrate), at this scale's model."""
    s = SCALES[scale]
    [arm] = [a for a in OPERATOR_ARMS if a.name == name]
    return arm_config(arm, s.base, (*s.sets, *sets), "visual", budget * s.base_budget)


def narrow(target: ModelConfig, factor: int) -> Patch:
    """The model patch of a start at 1/factor of the target's width: the same head size, d_ff by the 8/3 rule."""
    if target.d_model % factor or target.n_heads % factor or target.kv_heads % factor:
        raise GrowlmError(
            f"`overrides`: model.d_model {target.d_model} with {target.n_heads} heads ({target.kv_heads} key/value "
            f"heads) cannot start at 1/{factor} of its width with whole heads of the same size; give "
            f"multiples of {factor}"
        )
    return {
        "d_model": target.d_model // factor,
        "n_heads": target.n_heads // factor,
        "n_kv_heads": target.n_kv_heads // factor,
        "d_ff": 0,
    }


def split_steps(per_token: Sequence[float], target: float, unit: int, at: float) -> list[int]:
    """Optimizer steps of the two stages spending `target` FLOPs, `at` of them in stage 0 (whole steps); stage 1
    absorbs the rounding, as growth-operators' matched_steps does."""
    first = max(1, round(target * at / (unit * per_token[0])))
    return [first, max(1, round((target - first * unit * per_token[0]) / (unit * per_token[1])))]


def width_config(arm: Arm, scale: str, sets: Sequence[str], budget: float = 1.0) -> RunConfig:
    """The arm at this scale and budget: the monolithic config (its target shape, data, training settings and
    the user's overrides) started at 1/factor width with `first_blocks` blocks, widened back to the target at the
    growth (plus the remaining blocks, stacked), its two stages' tokens solved for monolithic's training FLOPs."""
    from growlm.train.costs import stage_shapes

    mono = depth_config(REFERENCE, scale, sets, budget)
    target, depth = mono.model, sum(stage.add_blocks for stage in mono.growth.stages)
    widen = {"d_model": target.d_model, "n_heads": target.n_heads, "d_ff": target.ff}
    patch = {
        "name": f"width-growth-{arm.name}",
        "model": narrow(target, arm.factor),
        "growth": {
            "width_init": arm.width_init,
            "init": "stack" if arm.first_blocks < depth else mono.growth.init,
            "stages": {
                0: {"add_blocks": arm.first_blocks},
                1: {
                    "add_blocks": depth - arm.first_blocks,
                    "tokens": 1,
                    "widen": widen,
                    "train_old_blocks": arm.train_old,
                },
            },
        },
    }
    source = f"width-growth ({arm.label})"
    cfg = configure(mono, patch, source=source)
    unit = mono.train.batch_size * mono.model.context
    spent = stage_shapes(mono)[0][0] * mono.growth.stages[0].tokens
    steps = split_steps([f for f, _ in stage_shapes(cfg)], spent, unit, arm.at)
    return configure(cfg, stage_tokens([s * unit for s in steps]), source=source)


def config_of(arm: Arm, scale: str, sets: Sequence[str], budget: float = 1.0) -> RunConfig:
    """Any arm's config (a best arm once `best_variant` has made it concrete)."""
    if not arm.width_init:
        return depth_config(arm.name, scale, sets, budget)
    return width_config(arm, scale, sets, budget)


def base_config(opts: WidthOptions) -> RunConfig:
    """Checks that the overrides, budgets and arms suit every run (the best arms of every possible pick) before
    anything is trained."""
    refuse_lr_override(opts.sets, "width-growth")
    budgets = budgets_of(opts)
    arms = chosen_arms(opts.arms)
    named = {arm.name for arm in arms}
    concrete = [arm for arm in arms if arm.name not in BEST]
    concrete += [best_variant(b, KNOWN[w]) for b in BEST if b in named for w in SIX if w in named]
    return [config_of(arm, opts.scale, opts.sets, b) for b in budgets for arm in concrete][0]
