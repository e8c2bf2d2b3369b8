"""The continual study: add a second language (default Russian) to a model trained on a first (default English),
every way growlm can, at the SAME added training FLOPs, on one tokenizer and one frozen substrate.

A base model is trained on the first domain (one stage, `growth.stages.0.data` weighting only its sources), once per
seed. Each arm then adds the second domain:
- fine-tune: every block of the base trains on the new domain (continued pre-training);
- grow-frozen / grow-frozen-random: new blocks on top (identity, as LLaMA-Pro, or random init), the base frozen;
- grow-lora: new blocks plus LoRA adapters on the base's blocks, under the paper's trainable-parameter budget;
- replay-fine-tune / replay-grow-frozen: as fine-tune and grow-frozen, with REPLAY of the first domain mixed in;
- expert: a new model trained from scratch on the new domain alone, composed with the base by the posterior with
  fixed share (composed-fixed-share) and by the paper's mean of logits (composed-mean-logits);
- joint: a model trained from scratch on both domains with the base's FLOPs plus the added FLOPs (what a user would
  otherwise pay for), with the same share of each domain as base + added stage.
The branch arms continue the finished base run (growlm.train.recipe.branch), so the base trains once per seed and
every branch starts from the same weights. The added stage's tokens are solved from each arm's exact FLOPs per
token so that every arm adds the same training FLOPs (rounded to whole steps). Every arm's learning rate (the added
stage's, or a scratch run's) is the best of a sweep on seed HELD_OUT_SEED, which no evaluated run uses.

Measured per arm and seed: first-domain validation loss after (and the base's before: the forgetting),
second-domain loss, loss on documents that alternate the two languages paragraph by paragraph, bits per byte on a
held-out source of each language that no run trains on, trainable parameters, added FLOPs, wall time; the paired
differences to fine-tune over seeds with 95% t intervals, raw and Holm p; a plot of forgetting against new-domain
gain; the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.study.compose import TextPlan, ensure_composition, write_mixed_text
from growlm.study.continual_tables import (
    ArmRow,
    Measures,
    arms_table,
    differences_table,
    forgetting_plot,
    per_seed_table,
)
from growlm.study.evaluation import EvalPlan, domain_texts, evaluate_model
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import RunSpec, configure, ensure_run, shared_inputs
from growlm.study.scales import PAPER, SMOKE
from growlm.study.sweep import HELD_OUT_SEED, ArmRuns, refuse_lr_override, sweep_table, tuned_arm

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


@dataclass(frozen=True)
class Scale:
    values: dict[str, object]
    base_blocks: int
    new_blocks: int  # what the grow arms add
    base_steps: int
    added_steps: int  # the added FLOPs: this many steps of fine-tune (every base block and the head training)
    lrs: tuple[float, ...]
    seeds: int
    documents: int  # held-out documents per language (and mixed documents) scored
    max_chars: int = 0  # per source (0: all)
    heldout_chars: int = 4000  # of each held-out source document scored for bpb


SCALES = {
    # one rate: the sweep's code path at test cost (growth-operators' smoke tests the choice among rates)
    "smoke": Scale({**SMOKE, "model.context": 32, "train.batch_size": 8}, 2, 1, 12, 25, (3e-3,), 2, 1, 30_000, 300),
    "cpu": Scale(
        {
            "model.d_model": 128,
            "train.batch_size": 8,
            "train.eval_every": 50,
            "train.eval_batches": 8,
            "train.checkpoint_every": 1000,
            "train.log_every": 10,
        },
        4,
        2,
        300,
        150,
        (1.5e-3, 3e-3, 6e-3),
        3,
        20,
    ),
    "paper": Scale(PAPER, 8, 4, 20_000, 10_000, (1.5e-4, 3e-4, 6e-4), 3, 200),
}


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

        def language(sources: tuple[str, ...], flag: str) -> str:
            found = {SOURCES[s].language if s in SOURCES else None for s in sources}
            if len(found) != 1 or None in found:
                raise GrowlmError(
                    f"{flag}: give named sources of one language (growlm data list), got {', '.join(sources)}"
                )
            return found.pop()

        first, second = language(self.base, "--base-source"), language(self.new, "--new-source")
        if first == second:
            raise GrowlmError(f"--base-source and --new-source are both {first}; give two languages")
        return first, second


def domains(opts: StudyOptions) -> Domains:
    return Domains(tuple(opts.base_sources) or BASE_SOURCES, tuple(opts.new_sources) or NEW_SOURCES)


def _stage(tokens: int, blocks: int, data: dict[str, float], **extra) -> dict:
    return {"add_blocks": blocks, "tokens": tokens, "data": data, **extra}


def base_run_config(scale: str, sets: list[str], d: Domains) -> RunConfig:
    """The base: one stage of the first domain (tokenizer and shards cover both domains)."""
    s = SCALES[scale]
    common = {**s.values, "data.sources": [*d.base, *d.new], "data.max_chars": s.max_chars, "name": "continual-base"}
    probe = configure({"growth": {"stages": [_stage(1, s.base_blocks, {})]}}, common, sets, "continual (base)")
    unit = probe.train.batch_size * probe.model.context
    stage = _stage(s.base_steps * unit, s.base_blocks, d.weights(1.0))
    return configure(probe, {"growth.stages": [stage]}, (), "continual (base)")


def _per_token(cfg: RunConfig) -> list[float]:
    from growlm.train.costs import stage_shapes

    return [f for f, _ in stage_shapes(cfg)]


def arm_config(arm: Arm, base: RunConfig, scale: str, d: Domains) -> RunConfig:
    """The arm's run config with its added tokens solved for the added FLOPs of `added_steps` of fine-tune."""
    s = SCALES[scale]
    unit = base.train.batch_size * base.model.context
    base_stage = base.growth.stages[0].model_dump()
    fine_tune = configure(base, {"growth.stages": [base_stage, _stage(unit, 0, d.weights(0.0), train_old_blocks=True)]})
    target = s.added_steps * unit * _per_token(fine_tune)[1]
    name = f"continual-{arm.name}"
    if arm.kind == "branch":
        extra = {"add_blocks": s.new_blocks, **arm.stage}
        blocks = extra.pop("add_blocks")
        share = REPLAY if arm.replay else 0.0
        growth = {f"growth.{k}": v for k, v in arm.growth.items()}
        probe = configure(base, {**growth, "growth.stages": [base_stage, _stage(unit, blocks, {}, **extra)]})
        steps = max(1, round(target / (unit * _per_token(probe)[1])))
        stages = [base_stage, _stage(steps * unit, blocks, d.weights(share), **extra)]
        return configure(base, {**growth, "growth.stages": stages, "name": name})
    scratch = _stage(unit, s.base_blocks, {})
    per_token = _per_token(configure(base, {"growth.stages": [scratch]}))[0]
    if arm.kind == "expert":
        steps = max(1, round(target / (unit * per_token)))
        return configure(base, {"growth.stages": [_stage(steps * unit, s.base_blocks, d.weights(0.0))], "name": name})
    base_flops = s.base_steps * unit * _per_token(base)[0]
    steps = max(1, round((base_flops + target) / (unit * per_token)))
    share = s.base_steps / (s.base_steps + s.added_steps)  # the base + added stage's share of first-domain windows
    return configure(base, {"growth.stages": [_stage(steps * unit, s.base_blocks, d.weights(share))], "name": name})


def base_config(scale: str, sets: list[str], base_sources=(), new_sources=()) -> RunConfig:
    """Checks --set and the sources before anything is trained."""
    refuse_lr_override(sets, "continual")
    d = Domains(tuple(base_sources) or BASE_SOURCES, tuple(new_sources) or NEW_SOURCES)
    d.languages()
    base = base_run_config(scale, sets, d)
    for arm in ARMS:
        arm_config(arm, base, scale, d)
    return base


def _branch_lr(cfg: RunConfig, lr: float) -> RunConfig:
    """The added stage's peak rate (the base keeps its own)."""
    return configure(cfg, {f"growth.stages.{len(cfg.growth.stages) - 1}.lr": lr})


def train(opts: StudyOptions, d: Domains) -> tuple[dict[int, RunSpec], dict[str, ArmRuns], RunConfig]:
    scale = SCALES[opts.scale]
    base = base_run_config(opts.scale, opts.sets, d)
    inputs = shared_inputs(base, opts.root / "inputs")
    base = configure(base, inputs)
    seeds = [HELD_OUT_SEED, *opts.seed_list]
    bases = {
        seed: RunSpec(
            f"base/seed-{seed}",
            opts.root / "runs" / "base" / f"seed-{seed}",
            configure(base, {"train.seed": seed, "name": f"continual-base-seed-{seed}"}),
            keep_checkpoints=True,  # every arm but expert and joint branches from it
        )
        for seed in seeds
    }
    for spec in bases.values():
        ensure_run(spec, opts.root / "configs")
    arms = {}
    for arm in ARMS:
        cfg = arm_config(arm, base, opts.scale, d)

        def config_for(lr: float, seed: int, cfg=cfg, arm=arm) -> RunConfig:
            named = {"train.seed": seed, "name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"}
            if arm.kind == "branch":
                return _branch_lr(configure(cfg, named), lr)
            return configure(cfg, {**named, "train.lr": lr})

        bases_for = {seed: spec for seed, spec in bases.items()} if arm.kind == "branch" else {}
        arms[arm.name] = tuned_arm(
            opts.root, arm.name, scale.lrs, opts.seed_list, config_for, sweep_seed=HELD_OUT_SEED, bases=bases_for
        )
    return bases, arms, base


def measure(model: Path, label: str, langs: tuple[str, str], heldout: Path, mixed: Path, texts, documents) -> Measures:
    plan = EvalPlan((("perplexity", documents),))
    rows = evaluate_model(model, model.parent / "eval", plan, label, shards=heldout)
    loss = {r["task"].split("/", 1)[1]: r["value"] for r in rows if r["metric"] == "loss"}
    missing = [lang for lang in langs if lang not in loss]
    if missing:
        raise GrowlmError(f"{heldout}: no held-out documents in {', '.join(missing)}; prepare more text")
    mixed_rows = evaluate_model(
        model, model.parent / "eval-mixed", TextPlan((("perplexity", documents),), text=mixed), f"{label} (mixed)"
    )
    mixed_loss = next(r["value"] for r in mixed_rows if r["metric"] == "loss")
    bpb = {}
    for name, text in texts.items():
        scored = evaluate_model(
            model, model.parent / f"eval-{name}", TextPlan((("perplexity", documents),), text=text), f"{label} ({name})"
        )
        bpb[name] = next(r["value"] for r in scored if r["metric"] == "bpb")
    return Measures(loss[langs[0]], loss[langs[1]], mixed_loss, bpb)


def _wall(spec: RunSpec, added_from: int) -> float:
    return sum(s.wall_s or 0.0 for s in spec.summary()[added_from:])


def _added_flops(spec: RunSpec, base: RunSpec | None) -> float:
    flops = spec.summary()[-1].flops
    return flops - base.summary()[-1].flops if base is not None else flops


def run(opts: StudyOptions) -> Path:
    d = domains(opts)
    langs = d.languages()
    scale = SCALES[opts.scale]
    bases, arms, base_cfg = train(opts, d)
    heldout = Path(base_cfg.data.shards)
    mixed = write_mixed_text(heldout, opts.root / "inputs" / "mixed.txt")
    texts = domain_texts(
        opts.root / "heldout", tuple(HELDOUT[lang] for lang in langs if lang in HELDOUT), scale.documents
    )

    def measured(model: Path, label: str) -> Measures:
        return measure(model, label, langs, heldout, mixed, texts, scale.documents)

    before = {s: measured(bases[s].final_model, f"base seed {s}") for s in opts.seed_list}
    after: dict[str, list[Measures]] = {}
    for name, runs in arms.items():
        after[name] = [measured(spec.final_model, f"{name} seed {s}") for s, spec in zip(opts.seed_list, runs.runs)]
    for name, (mode, rate) in COMPOSITIONS.items():
        composed = []
        for s, expert in zip(opts.seed_list, arms["expert"].runs):
            folder = opts.root / "composed" / f"seed-{s}" / name / "model"
            ensure_composition([bases[s].final_model, expert.final_model], folder, mode, rate)
            composed.append(measured(folder, f"{name} seed {s}"))
        after[name] = composed
    rows = results(opts, bases, arms)
    tables = [
        arms_table(rows, before, langs, opts.seeds, REFERENCE),
        differences_table(after, before, langs, REFERENCE),
        per_seed_table(after, before, langs),
        sweep_table(arms, scale.lrs),
    ]
    description = (
        f"Adding {langs[1]} ({', '.join(d.new)}) to a model trained on {langs[0]} ({', '.join(d.base)}), "
        f"{opts.scale} scale: d_model {base_cfg.model.d_model}, base depth {scale.base_blocks}, "
        f"{opts.seeds} seed(s), every arm adding the training FLOPs of {scale.added_steps} fine-tuning steps."
    )
    return write_study(
        opts.root,
        "continual",
        description,
        {spec.label: spec.path for arm in arms.values() for spec in arm.runs},
        tables,
        {"forgetting-vs-gain": forgetting_plot(after, before, langs)},
        {
            "measures": {name: [vars(m) for m in ms] for name, ms in after.items()},
            "before": [vars(m) for m in before.values()],
        },
    )


def results(opts: StudyOptions, bases: dict[int, RunSpec], arms: dict[str, ArmRuns]) -> list[ArmRow]:
    """Each arm's parameters, added FLOPs and wall time; the compositions count their expert's."""
    rows = []
    described = {arm.name: arm for arm in ARMS}
    for name, runs in arms.items():
        arm = described[name]
        own = [bases[s] if arm.kind == "branch" else None for s in opts.seed_list]
        added = [_added_flops(spec, b) for spec, b in zip(runs.runs, own)]
        if arm.kind == "joint":  # its total minus the base's: what it spends beyond the base
            added = [a - bases[s].summary()[-1].flops for a, s in zip(added, opts.seed_list)]
        walls = [_wall(spec, 1 if arm.kind == "branch" else 0) for spec in runs.runs]
        trainable = runs.runs[0].summary()[-1].trainable_params
        rows.append(ArmRow(name, arm.what, f"{runs.lr:g}", trainable, added, walls))
        if name == "expert":
            for comp, (mode, rate) in COMPOSITIONS.items():
                what = f"base + expert, {mode}" + (f" (switch rate {rate})" if rate else "")
                rows.append(ArmRow(comp, what, "–", trainable, added, walls))
    return rows
