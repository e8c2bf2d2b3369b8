"""The continual study's arms, scales, options and domains, and each arm's config at equal added FLOPs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from growlm.config import Patch, RunConfig, combine
from growlm.errors import GrowlmError
from growlm.study.options import StudyOptions, option
from growlm.study.runs import configure
from growlm.study.scales import PAPER, SMOKE, StudyScale
from growlm.study.sweep import refuse_lr_override

BASE_SOURCES = ("shakespeare", "fortunes-en")
NEW_SOURCES = ("fortunes-ru", "libreoffice-help-ru")
HELDOUT = {"en": "debian-handbook-en", "ru": "debian-handbook-ru"}  # bpb on text no run trains on
REPLAY = 0.1  # the replay arms' share of first-domain windows
REFERENCE = "fine-tune"
COMPOSITIONS = {"composed-fixed-share": ("posterior", 0.01), "composed-mean-logits": ("mean_logits", 0.0)}


@dataclass(frozen=True)
class Arm:
    name: str
    what: str
    kind: str  # "branch" (continues the base), "expert" or "joint" (from scratch)
    stage: dict[str, object] = field(default_factory=dict)  # the added stage's settings (branch arms)
    growth: dict[str, object] = field(default_factory=dict)  # growth.* of the branch
    replay: bool = False


ARMS = (
    Arm(
        "fine-tune", "every base block trains on the new domain", "branch", {"add_blocks": 0, "train_old_blocks": True}
    ),
    Arm("grow-frozen", "new blocks (identity init), base frozen", "branch", {}, {"init": "identity"}),
    Arm("grow-frozen-random", "new blocks (random init), base frozen", "branch", {}, {"init": "random"}),
    Arm("grow-lora", "new blocks + LoRA on the base (budget 1 x stage 1)", "branch", {"lora": True}),
    Arm(
        "replay-fine-tune",
        f"fine-tune, {REPLAY:.0%} first-domain replay",
        "branch",
        {"add_blocks": 0, "train_old_blocks": True},
        replay=True,
    ),
    Arm("replay-grow-frozen", f"grow-frozen, {REPLAY:.0%} replay", "branch", {}, {"init": "identity"}, replay=True),
    Arm("expert", "new model from scratch on the new domain (composed below)", "expert"),
    Arm("joint", "new model from scratch on both domains, base + added FLOPs", "joint"),
)


@dataclass(frozen=True, kw_only=True)
class Scale(StudyScale):
    base_blocks: int
    new_blocks: int  # what the grow arms add
    base_steps: int
    added_steps: int  # the added FLOPs: this many steps of fine-tune (every base block and the head training)
    documents: int  # held-out documents per language (and mixed documents) scored
    max_chars: int = 0  # per source (0: all)
    heldout_chars: int = 4000  # of each held-out source document scored for bpb


SCALES = {
    "cpu": Scale(
        patch={
            "model": {"d_model": 128},
            "train": {"batch_size": 8, "eval_every": 50, "eval_batches": 8, "checkpoint_every": 1000, "log_every": 10},
        },
        about="2 CPU cores, about 2 h 45 min",
        base_blocks=4,
        new_blocks=2,
        base_steps=300,
        added_steps=150,
        lrs=(1.5e-3, 3e-3, 6e-3),
        seeds=3,
        documents=20,
    ),
    "paper": Scale(
        patch=PAPER,
        about="the paper's sizes, for GPUs",
        base_blocks=8,
        new_blocks=4,
        base_steps=20_000,
        added_steps=10_000,
        lrs=(1.5e-4, 3e-4, 6e-4),
        seeds=3,
        documents=200,
    ),
    # one rate: the sweep's code path at test cost (growth-operators' smoke tests the choice among rates)
    "smoke": Scale(
        patch=combine(SMOKE, {"model": {"context": 32}, "train": {"batch_size": 8}}),
        about="tiny, seconds, to check an install",
        base_blocks=2,
        new_blocks=1,
        base_steps=12,
        added_steps=25,
        lrs=(3e-3,),
        seeds=2,
        documents=1,
        max_chars=30_000,
        heldout_chars=300,
    ),
}


@dataclass(frozen=True, kw_only=True)
class ContinualOptions(StudyOptions):
    base_sources: tuple[str, ...] = option(
        (),
        "a source of the first domain, the base model's (repeatable; default shakespeare, fortunes-en)",
        flag="--base-source",
        metavar="NAME",
        repeat=True,
    )
    new_sources: tuple[str, ...] = option(
        (),
        "a source of the domain added (repeatable; default fortunes-ru, libreoffice-help-ru)",
        flag="--new-source",
        metavar="NAME",
        repeat=True,
    )


@dataclass(frozen=True)
class Domains:
    base: tuple[str, ...]
    new: tuple[str, ...]

    def weights(self, base_share: float) -> dict[str, float]:
        """A stage mixture: base_share of windows from the first domain, the rest from the second, each domain's
        share split evenly over its sources."""
        out = {s: base_share / len(self.base) for s in self.base} if base_share else {}
        if base_share < 1:
            out.update({s: (1 - base_share) / len(self.new) for s in self.new})
        return out

    def languages(self) -> tuple[str, str]:
        from growlm.data.sources import SOURCES

        def language(sources: tuple[str, ...], param: str) -> str:
            found = {SOURCES[s].language if s in SOURCES else None for s in sources}
            if len(found) != 1 or None in found:
                raise GrowlmError(
                    f"`{param}`: give named sources of one language (growlm data list), got {', '.join(sources)}"
                )
            return found.pop()

        first, second = language(self.base, "base_sources"), language(self.new, "new_sources")
        if first == second:
            raise GrowlmError(f"`base_sources` and `new_sources` are both {first}; give two languages")
        return first, second


def domains(opts: ContinualOptions) -> Domains:
    return Domains(tuple(opts.base_sources) or BASE_SOURCES, tuple(opts.new_sources) or NEW_SOURCES)


def _stage(tokens: int, blocks: int, data: dict[str, float], **extra) -> dict:
    return {"add_blocks": blocks, "tokens": tokens, "data": data, **extra}


def _stages(*stages: dict, **patch: object) -> Patch:
    """A patch whose growth.stages are `stages` (the list replaced), plus `patch` at the top level."""
    return {"growth": {"stages": list(stages)}, **patch}


def base_run_config(scale: str, sets: Sequence[str], d: Domains) -> RunConfig:
    """The base: one stage of the first domain (tokenizer and shards cover both domains)."""
    s = SCALES[scale]
    common = combine(
        s.patch, {"data": {"sources": [*d.base, *d.new], "max_chars": s.max_chars}, "name": "continual-base"}
    )
    probe = configure(_stages(_stage(1, s.base_blocks, {})), common, sets=sets, source="continual (base)")
    unit = probe.train.batch_size * probe.model.context
    stage = _stage(s.base_steps * unit, s.base_blocks, d.weights(1.0))
    return configure(probe, _stages(stage), source="continual (base)")


def _per_token(cfg: RunConfig) -> list[float]:
    from growlm.train.costs import stage_shapes

    return [f for f, _ in stage_shapes(cfg)]


def arm_config(arm: Arm, base: RunConfig, scale: str, d: Domains) -> RunConfig:
    """The arm's run config with its added tokens solved for the added FLOPs of `added_steps` of fine-tune."""
    s = SCALES[scale]
    unit = base.train.batch_size * base.model.context
    base_stage = base.growth.stages[0].model_dump()
    fine_tune = configure(base, _stages(base_stage, _stage(unit, 0, d.weights(0.0), train_old_blocks=True)))
    target = s.added_steps * unit * _per_token(fine_tune)[1]
    name = f"continual-{arm.name}"
    if arm.kind == "branch":
        extra = {"add_blocks": s.new_blocks, **arm.stage}
        blocks = extra.pop("add_blocks")
        share = REPLAY if arm.replay else 0.0
        growth = {"growth": dict(arm.growth)}
        probe = configure(base, growth, _stages(base_stage, _stage(unit, blocks, {}, **extra)))
        steps = max(1, round(target / (unit * _per_token(probe)[1])))
        stages = _stages(base_stage, _stage(steps * unit, blocks, d.weights(share), **extra), name=name)
        return configure(base, growth, stages)
    scratch = _stage(unit, s.base_blocks, {})
    per_token = _per_token(configure(base, _stages(scratch)))[0]
    if arm.kind == "expert":
        steps = max(1, round(target / (unit * per_token)))
        return configure(base, _stages(_stage(steps * unit, s.base_blocks, d.weights(0.0)), name=name))
    base_flops = s.base_steps * unit * _per_token(base)[0]
    steps = max(1, round((base_flops + target) / (unit * per_token)))
    share = s.base_steps / (s.base_steps + s.added_steps)  # the base + added stage's share of first-domain windows
    return configure(base, _stages(_stage(steps * unit, s.base_blocks, d.weights(share)), name=name))


def base_config(opts: ContinualOptions) -> RunConfig:
    """Checks the overrides and the sources before anything is trained."""
    refuse_lr_override(opts.sets, "continual")
    d = domains(opts)
    d.languages()
    base = base_run_config(opts.scale, opts.sets, d)
    for arm in ARMS:
        arm_config(arm, base, opts.scale, d)
    return base


def _branch_lr(cfg: RunConfig, lr: float) -> RunConfig:
    """The added stage's peak rate (the base keeps its own)."""
    return configure(cfg, {"growth": {"stages": {len(cfg.growth.stages) - 1: {"lr": lr}}}})
