"""The nine-layer study: constructive growth (blocks 1-3, 4-6, 7-9) against monolithic training, same data, same
tokenizer, same token budget, same evaluation.

Variants (configs/nine-layer-*.toml): constructive on the frozen visual substrate; monolithic on the same frozen
substrate; monolithic with a trainable embedding; the paper's unfrozen-1-9 variant (constructive, with a
randomly initialised embedding trained in stage 1 only, then frozen); and constructive and monolithic-frozen again
on the binary (token-id bit code) substrate. Every run points at one tokenizer and one set of shards built in
STUDY/inputs. Each variant's learning rate comes from the same sweep (study/sweep.py), every stage warms up over
the same tokens, each stage starts a fresh AdamW.

Output: the variants at equal tokens (parameters, FLOPs, wall time, final validation loss, every task with its
interval, chance, majority-answer baseline, share of prompts cut and items skipped); per substrate group, every
variant's final validation loss with the paired difference to monolithic-frozen and the FLOPs each spent
(study/matched.py; nothing is read mid-schedule); the LR sweep; validation loss against cumulative FLOPs with ± sd
bands over seeds (a plot along the runs, not a comparison).

Budgets: cpu trains 110,592 tokens per run (3 x 18 steps of 4 windows of 512 tokens in the constructive plans, a
window that holds most benchmark prompts; validation every 6 steps) with 5 seeds, scored on MMLU (10 questions per
subject), ARC-Easy and ARC-Challenge (200 each) and
BoolQ (100); paper trains 900M tokens per run at d_model 1024 and scores the full sets (point data.sources at a
large corpus with --set: Shakespeare is ~2M tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from growlm.analysis.plots import plot_loss_bands
from growlm.analysis.tables import Table
from growlm.config import Patch, RunConfig, combine
from growlm.data.decontaminate import MIN_EXACT
from growlm.evals.records import Score
from growlm.study.definition import Study
from growlm.study.evaluation import (
    EvalPlan,
    bits_per_byte,
    domain_texts,
    evaluate_model,
    evaluate_stages,
    mean_sd_cell,
    over_seeds,
    seed_note,
)
from growlm.study.matched import bands, compare_final, final_rows, final_table, val_curve
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import configure, decontamination_counts, read_config_data, shared_inputs
from growlm.study.scales import BINARY, PAPER, SMOKE, StudyScale, stage_tokens, train
from growlm.study.sweep import ArmRuns, refuse_lr_override, sweep_table, tuned_arm


@dataclass(frozen=True)
class Variant:
    name: str
    config: str
    patch: Patch


VARIANTS = (
    Variant("constructive", "nine-layer-constructive.toml", {}),
    Variant("monolithic-frozen", "nine-layer-monolithic-frozen.toml", {}),
    Variant("monolithic-trainable", "nine-layer-monolithic-trainable.toml", {}),
    Variant("unfrozen-1-9", "nine-layer-constructive-unfrozen.toml", {}),
    Variant("constructive-binary", "nine-layer-constructive.toml", BINARY),
    Variant("monolithic-frozen-binary", "nine-layer-monolithic-frozen.toml", BINARY),
)
RUN_TOKENS = {"smoke": 768, "cpu": 110_592, "paper": 900_000_000}
SCALES = {
    "cpu": StudyScale(
        patch={
            "model": {"context": 512},
            "train": {
                "batch_size": 4,
                "eval_every": 6,
                "eval_batches": 4,
                "checkpoint_every": 1000,
                "warmup_tokens": 8192,
            },
        },
        about="2 CPU cores, about 2.5 h",
        plan=EvalPlan((("mmlu", 10), ("arc_easy", 200), ("arc_challenge", 200), ("boolq", 100))),
        seeds=5,
        lrs=(1.5e-3, 3e-3, 6e-3),
    ),
    "paper": StudyScale(
        patch=combine(PAPER, train(warmup_tokens=10_000_000)),
        about="the paper's sizes, for GPUs",
        plan=EvalPlan((("mmlu", None), ("arc_easy", None), ("arc_challenge", None), ("boolq", None))),
        lrs=(1.5e-4, 3e-4, 6e-4),
    ),
    # eval_every 2: a monolithic smoke run is 3 steps, and is read before its end (at the constructive runs' FLOPs)
    "smoke": StudyScale(
        patch=combine(SMOKE, train(warmup_tokens=256, eval_every=2)),
        about="tiny, seconds, to check an install",
        plan=EvalPlan((("arc_easy", 2),)),
        seeds=2,
        lrs=(3e-3, 1e-2),
    ),
}
REFERENCES = {"visual": "monolithic-frozen", "binary": "monolithic-frozen-binary"}
HELDOUT_SOURCES = ("fortunes-en", "libreoffice-help-en", "debian-handbook-en")  # English text no run trains on
BPB_DOCUMENTS = {"smoke": 2, "cpu": 20, "paper": 200}


def variant_config(variant: Variant, scale: str, sets: Sequence[str]) -> RunConfig:
    """The variant's config at this scale, the run's tokens split evenly over its stages.

    The budget is rounded down to whole optimizer steps in every stage of a one- or three-stage plan, so every
    variant trains exactly the same number of tokens (--set may still override a stage's tokens).
    """
    data = read_config_data(variant.config)
    patch = combine(SCALES[scale].patch, variant.patch)
    cfg = configure(data, patch, sets=sets, source=variant.config)
    unit = 3 * cfg.train.batch_size * cfg.model.context
    tokens = max(1, RUN_TOKENS[scale] // unit) * unit
    n = len(data["growth"]["stages"])
    return configure(data, patch, stage_tokens([tokens // n] * n), sets=sets, source=variant.config)


def base_config(opts: StudyOptions) -> RunConfig:
    """The constructive variant's config, after checking that the overrides suit every variant."""
    refuse_lr_override(opts.sets, "nine-layer")
    return [variant_config(v, opts.scale, opts.sets) for v in VARIANTS][0]


def variant_row(
    variant: Variant, arm: ArmRuns, scores: dict, keys: list[tuple[str, str]], bpb: list[dict[str, float | None]]
) -> list[object]:
    summaries = [run.summary() for run in arm.runs]
    first = summaries[0]
    substrate = arm.runs[0].config.substrate.kind
    return [
        variant.name,
        substrate,
        f"{arm.lr:g}",
        first[-1].total_params,
        " / ".join(f"{s.trainable_params:,}" for s in first),
        first[-1].tokens,
        " / ".join(f"{ratio:.3g}" for ratio in arm.runs[0].tokens_per_param()),
        first[-1].flops,
        mean_sd_cell([sum(s.wall_s for s in summary) for summary in summaries]),
        mean_sd_cell([summary[-1].val_loss for summary in summaries]),
        *(mean_sd_cell([seed[domain] for seed in bpb]) for domain in bpb[0]),
        *(scores[key].cell() if key in scores else None for key in keys),
    ]


def score_column(task: str, metric: str, row: Score) -> str:
    """A score's column title with what the items alone give: chance, the majority answer, prompts cut, skipped."""
    facts = [f"chance {row.chance:.3g}"] if row.chance is not None else []
    if row.majority is not None:
        facts.append(f"majority {row.majority:.3g}")
    facts.append(f"{row.truncated:.0%} cut, {row.skipped} skipped")
    return f"{task} {metric} ({'; '.join(facts)})"


def train_variants(opts: StudyOptions, configs: dict[str, RunConfig]) -> dict[str, ArmRuns]:
    tasks = tuple(task for task, _ in SCALES[opts.scale].plan.tasks)
    shared = shared_inputs(configs["constructive"], opts.root / "inputs", against=tasks)
    common = {k: v for k, v in shared.items() if k != "substrate"}
    binary = shared_inputs(configure(configs["constructive-binary"], common), opts.root / "inputs-binary")
    arms = {}
    for v in VARIANTS:
        cfg = configs[v.name]
        inputs = {"binary": binary, "trainable": common}.get(cfg.substrate.kind, shared)
        arms[v.name] = tuned_arm(
            opts.root,
            v.name,
            SCALES[opts.scale].lrs,
            opts.seed_list,
            lambda lr, seed, cfg=cfg, inputs=inputs: configure(
                cfg, inputs, train(lr=lr, seed=seed), {"name": f"{cfg.name}-lr-{lr:g}-seed-{seed}"}
            ),
        )
    return arms


def final_tables(arms: dict[str, ArmRuns]) -> tuple[list[Table], dict]:
    """Per substrate group, every variant's final validation loss against monolithic-frozen's, paired by seed: runs
    at equal tokens, each read at its own end (their FLOPs differ, and the table says by how much)."""
    tables, out = [], {}
    for group, reference in REFERENCES.items():
        members = [v.name for v in VARIANTS if v.name.endswith("-binary") == (group == "binary")]
        comparison = compare_final({name: final_rows(arms[name].runs) for name in members}, reference)
        note = (
            "Equal tokens, not equal FLOPs: the constructive schedule computes less per token (frozen blocks run "
            "forward only). A compute-matched comparison of finished schedules is growth-operators' budget ladder."
        )
        tables.append(final_table(comparison, f"Final losses at equal tokens, {group} substrate group", note))
        out[group] = comparison.to_json()
    return tables, out


def describe(opts: StudyOptions, reference: RunConfig, clean: dict) -> str:
    tokens = sum(s.tokens for s in reference.growth.stages)
    return (
        f"Constructive vs monolithic training at {opts.scale} scale: d_model {reference.model.d_model}, "
        f"context {reference.model.context}, data {', '.join(reference.data.sources)}, {tokens:,} tokens per "
        f"run, {opts.seeds} seed(s) per variant; all runs share one tokenizer and one set of shards, "
        f"decontaminated against {', '.join(clean['tasks'])}: {clean['documents_dropped']:,} of "
        f"{clean['documents_checked']:,} documents dropped ({clean['chars_dropped']:,} characters), sharing a "
        f"{clean['n']}-gram (or, for the {clean['items_matched_whole']:,} items under {clean['n']} words, the "
        f"whole item) with {clean['contaminated_items']:,} of {clean['items']:,} items; "
        f"{clean['items_too_short']:,} items under {MIN_EXACT} words not checked."
    )


def final_scores(arm, scale) -> dict:
    """Each (task, metric) of the final models, over seeds."""
    per_seed = [evaluate_stages(spec, scale.plan, [spec.n_stages]) for spec in arm.runs]
    return {(t, m): s for (t, m, subject, _), s in over_seeds(per_seed).items() if subject is None}


def final_bpb(spec, texts, documents: int):
    """Bits per byte of a run's final model on the validation text and each held-out domain."""
    return bits_per_byte(spec.final_model, spec.final_model.parent / "eval", texts, documents, spec.label)


def run(opts: StudyOptions) -> Path:
    scale = SCALES[opts.scale]
    configs = {v.name: variant_config(v, opts.scale, opts.sets) for v in VARIANTS}
    arms = train_variants(opts, configs)
    texts = domain_texts(opts.root / "heldout", HELDOUT_SOURCES, BPB_DOCUMENTS[opts.scale])
    scores = {v.name: final_scores(arms[v.name], scale) for v in VARIANTS}
    documents = BPB_DOCUMENTS[opts.scale]
    bpb = {v.name: [final_bpb(spec, texts, documents) for spec in arms[v.name].runs] for v in VARIANTS}
    first = arms[VARIANTS[0].name].runs[0]  # items, window and tokenizer are the same for every model
    rows_by_key = {
        (r.task, r.metric): r
        for r in evaluate_model(first.final_model, first.final_model.parent / "eval", scale.plan, first.label)
    }
    keys = list(dict.fromkeys(key for by_key in scores.values() for key in by_key))
    columns = [score_column(t, m, rows_by_key[t, m]) for t, m in keys]
    rows = [variant_row(v, arms[v.name], scores[v.name], keys, bpb[v.name]) for v in VARIANTS]
    domains = [f"bpb {d}" for d in ("validation", *HELDOUT_SOURCES)]
    table = Table(
        "Nine-layer comparison at equal tokens",
        [
            "variant",
            "substrate",
            "LR",
            "total params",
            "trainable params by stage",
            "training tokens",
            "tokens per param (trainable / non-embedding)",
            "training FLOPs",
            "wall (s)",
            "final val loss",
            *domains,
            *columns,
        ],
        rows,
        "Wall time and final validation loss (nats/token): "
        f"{'mean ± sd over seeds' if opts.seeds > 1 else 'one seed'}. Scores of the final models: "
        f"{seed_note(opts.seeds)}; bpb: bits per UTF-8 byte on the first {BPB_DOCUMENTS[opts.scale]} validation "
        f"documents and on {BPB_DOCUMENTS[opts.scale]} documents (first 4,000 characters each) of each other English "
        "source, mean ± sd over seeds; majority: always the most frequent gold answer; cut: share of scored prompts "
        "cut to fit the window; skipped: items whose answer alone does not fit. Tokens per param: training tokens "
        "over the trainable parameters of the stage that trains the most, and over the final model's non-embedding "
        "parameters (blocks and norms). FLOPs count what each stage computes (frozen blocks forward only). "
        "LR: each variant's peak rate, chosen from "
        f"{', '.join(f'{lr:g}' for lr in scale.lrs)} on seed 0's final validation loss; every stage warms up over "
        "the same tokens; each stage starts a fresh AdamW.",
    )
    comparison_tables, comparisons = final_tables(arms)
    clean = decontamination_counts(opts.root / "inputs")
    curves = {name: [val_curve(run.metrics()) for run in arm.runs] for name, arm in arms.items()}
    return write_study(
        opts.root,
        "nine-layer",
        describe(opts, configs["constructive"], clean),
        {spec.label: spec.path for arm in arms.values() for spec in arm.runs},
        [table, *comparison_tables, sweep_table(arms, scale.lrs)],
        {"val-loss-vs-flops": plot_loss_bands({n: bands(c) for n, c in curves.items()})},
        {"comparisons": comparisons, "learning_rates": {n: a.lr for n, a in arms.items()}, "decontamination": clean},
    )


STUDY = Study("nine-layer", SCALES, base_config, run)
