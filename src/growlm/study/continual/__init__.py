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

from pathlib import Path

from growlm.config import RunConfig, combine
from growlm.errors import GrowlmError
from growlm.study.compose import TextPlan, ensure_composition, write_mixed_text
from growlm.study.continual.arms import (
    ARMS,
    COMPOSITIONS,
    HELDOUT,
    REFERENCE,
    SCALES,
    ContinualOptions,
    Domains,
    _branch_lr,
    arm_config,
    base_config,
    base_run_config,
    domains,
)
from growlm.study.continual.tables import (
    ArmRow,
    Measures,
    arms_table,
    differences_table,
    forgetting_plot,
    per_seed_table,
)
from growlm.study.definition import Study
from growlm.study.evaluation import EvalPlan, domain_texts, evaluate_model
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import RunSpec, configure, ensure_run, shared_inputs
from growlm.study.scales import train
from growlm.study.sweep import HELD_OUT_SEED, ArmRuns, sweep_table, tuned_arm

__all__ = ["ARMS", "COMPOSITIONS", "REFERENCE", "SCALES", "STUDY", "ContinualOptions", "run"]


def train_arms(opts: ContinualOptions, d: Domains) -> tuple[dict[int, RunSpec], dict[str, ArmRuns], RunConfig]:
    scale = SCALES[opts.scale]
    base = base_run_config(opts.scale, opts.sets, d)
    inputs = shared_inputs(base, opts.root / "inputs")
    base = configure(base, inputs)
    seeds = [HELD_OUT_SEED, *opts.seed_list]
    bases = {
        seed: RunSpec(
            f"base/seed-{seed}",
            opts.root / "runs" / "base" / f"seed-{seed}",
            configure(base, train(seed=seed), {"name": f"continual-base-seed-{seed}"}),
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
            named = combine(train(seed=seed), {"name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"})
            if arm.kind == "branch":
                return _branch_lr(configure(cfg, named), lr)
            return configure(cfg, named, train(lr=lr))

        bases_for = {seed: spec for seed, spec in bases.items()} if arm.kind == "branch" else {}
        arms[arm.name] = tuned_arm(
            opts.root, arm.name, scale.lrs, opts.seed_list, config_for, sweep_seed=HELD_OUT_SEED, bases=bases_for
        )
    return bases, arms, base


def measure(model: Path, label: str, langs: tuple[str, str], heldout: Path, mixed: Path, texts, documents) -> Measures:
    plan = EvalPlan((("perplexity", documents),))
    rows = evaluate_model(model, model.parent / "eval", plan, label, shards=heldout)
    loss = {r.task.split("/", 1)[1]: r.value for r in rows if r.metric == "loss"}
    missing = [lang for lang in langs if lang not in loss]
    if missing:
        raise GrowlmError(f"{heldout}: no held-out documents in {', '.join(missing)}; prepare more text")
    mixed_rows = evaluate_model(
        model, model.parent / "eval-mixed", TextPlan((("perplexity", documents),), text=mixed), f"{label} (mixed)"
    )
    mixed_loss = next(r.value for r in mixed_rows if r.metric == "loss")
    bpb = {}
    for name, text in texts.items():
        scored = evaluate_model(
            model, model.parent / f"eval-{name}", TextPlan((("perplexity", documents),), text=text), f"{label} ({name})"
        )
        bpb[name] = next(r.value for r in scored if r.metric == "bpb")
    return Measures(loss[langs[0]], loss[langs[1]], mixed_loss, bpb)


def _wall(spec: RunSpec, added_from: int) -> float:
    return sum(s.wall_s or 0.0 for s in spec.summary()[added_from:])


def _added_flops(spec: RunSpec, base: RunSpec | None) -> float:
    flops = spec.summary()[-1].flops
    return flops - base.summary()[-1].flops if base is not None else flops


def run(opts: ContinualOptions) -> Path:
    d = domains(opts)
    langs = d.languages()
    scale = SCALES[opts.scale]
    bases, arms, base_cfg = train_arms(opts, d)
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


STUDY = Study("continual", SCALES, base_config, run, options=ContinualOptions)
