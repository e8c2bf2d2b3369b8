"""The nine-layer study: constructive growth (blocks 1-3, 4-6, 7-9) against monolithic training, same data, same
tokenizer, same token budget, same evaluation.

Variants (configs/nine-layer-*.toml): constructive on the frozen visual substrate; monolithic on the same frozen
substrate; monolithic with a trainable embedding; constructive with the embedding trained in stage 1 only; and
constructive and monolithic-frozen again on the binary (token-id bit code) substrate. Every run points at one
tokenizer and one set of shards built in STUDY/inputs. Output: one table (total and per-stage trainable
parameters, training FLOPs, wall time, final validation loss, every task with intervals) and validation loss
against cumulative training FLOPs for every variant (mean over seeds), for equal-compute comparisons.

Budgets: cpu trains 215,040 tokens per run (3 x 35 steps of 2,048 tokens in the constructive plans, validation
every 15 steps) with 3 seeds, scored on MMLU (10 questions per subject), ARC-Easy and ARC-Challenge (200 each) and
BoolQ (100); paper trains 900M tokens per run at d_model 1024 and scores the full sets (point data.sources at a
large corpus with --set: Shakespeare is ~2M tokens).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from growlm.analysis.plots import plot_loss_vs_flops
from growlm.analysis.tables import Table
from growlm.config import RunConfig
from growlm.study.evaluation import EvalPlan, evaluate_stages, mean_sd_cell, over_seeds, seed_note
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import RunSpec, configure, ensure_run, read_config_data, shared_inputs
from growlm.study.scales import PAPER, SMOKE, StudyScale

BINARY = {"substrate.kind": "binary", "substrate.dim": 256}


@dataclass(frozen=True)
class Variant:
    name: str
    config: str
    values: dict[str, object]


VARIANTS = (
    Variant("constructive", "nine-layer-constructive.toml", {}),
    Variant("monolithic-frozen", "nine-layer-monolithic-frozen.toml", {}),
    Variant("monolithic-trainable", "nine-layer-monolithic-trainable.toml", {}),
    Variant("constructive-unfrozen", "nine-layer-constructive-unfrozen.toml", {}),
    Variant("constructive-binary", "nine-layer-constructive.toml", BINARY),
    Variant("monolithic-frozen-binary", "nine-layer-monolithic-frozen.toml", BINARY),
)
RUN_TOKENS = {"smoke": 768, "cpu": 216_000, "paper": 900_000_000}
SCALES = {
    "smoke": StudyScale(SMOKE, EvalPlan((("arc_easy", 2),))),
    "cpu": StudyScale({"train.eval_every": 15},
                      EvalPlan((("mmlu", 10), ("arc_easy", 200), ("arc_challenge", 200), ("boolq", 100))), seeds=3),
    "paper": StudyScale(PAPER, EvalPlan((("mmlu", None), ("arc_easy", None), ("arc_challenge", None),
                                         ("boolq", None)))),
}


def variant_config(variant: Variant, scale: str, sets: list[str]) -> RunConfig:
    """The variant's config at this scale, the run's tokens split evenly over its stages.

    The budget is rounded down to whole optimizer steps in every stage of a one- or three-stage plan, so every
    variant trains exactly the same number of tokens (--set may still override a stage's tokens).
    """
    data = read_config_data(variant.config)
    values = {**SCALES[scale].values, **variant.values}
    cfg = configure(data, values, sets, variant.config)
    unit = 3 * cfg.train.batch_size * cfg.model.context
    tokens = max(1, RUN_TOKENS[scale] // unit) * unit
    n = len(data["growth"]["stages"])
    budget = {f"growth.stages.{k}.tokens": tokens // n for k in range(n)}
    return configure(data, {**values, **budget}, sets, variant.config)


def base_config(scale: str, sets: list[str]) -> RunConfig:
    """The constructive variant's config, after checking that --set suits every variant."""
    return [variant_config(v, scale, sets) for v in VARIANTS][0]


def mean_val_curve(runs: list[RunSpec]) -> list[dict]:
    """Validation rows averaged over seeds (the seeds share the schedule, so their steps and FLOPs coincide).

    A growth step has two rows, the end of one stage and the start of the next: both are kept, in that order.
    """
    by_point: dict[tuple[int, bool], list[dict]] = {}
    for run in runs:
        for row in run.metrics():
            if row["kind"] == "val":
                by_point.setdefault((row["step"], bool(row.get("at_stage_start"))), []).append(row)
    return [{"kind": "val", "step": step, "flops": rows[0]["flops"],
             "val_loss": statistics.fmean(r["val_loss"] for r in rows)}
            for (step, _), rows in sorted(by_point.items()) if len(rows) == len(runs)]


def variant_row(variant: Variant, runs: list[RunSpec], scores: dict, keys: list[tuple[str, str]]) -> list[object]:
    summaries = [run.summary() for run in runs]
    first = summaries[0]
    substrate = runs[0].config.substrate.kind
    return [variant.name, substrate, first[-1]["total_params"],
            " / ".join(f"{s['trainable_params']:,}" for s in first), first[-1]["tokens"], first[-1]["flops"],
            mean_sd_cell([sum(s["wall_s"] for s in summary) for summary in summaries]),
            mean_sd_cell([summary[-1]["val_loss"] for summary in summaries]),
            *(scores[key].cell() if key in scores else None for key in keys)]


def run(opts: StudyOptions) -> Path:
    scale = SCALES[opts.scale]
    configs = {v.name: variant_config(v, opts.scale, opts.sets) for v in VARIANTS}
    shared = shared_inputs(configs["constructive"], opts.root / "inputs")
    common = {k: v for k, v in shared.items() if k != "substrate.path"}
    binary = shared_inputs(configure(configs["constructive-binary"], common), opts.root / "inputs-binary")
    runs: dict[str, list[RunSpec]] = {}
    for v in VARIANTS:
        cfg = configs[v.name]
        inputs = {"binary": binary, "trainable": common}.get(cfg.substrate.kind, shared)
        runs[v.name] = [RunSpec(f"{v.name}/seed-{s}", opts.root / "runs" / v.name / f"seed-{s}",
                                configure(cfg, {**inputs, "train.seed": s, "name": f"{v.name}-seed-{s}"}))
                        for s in opts.seed_list]
    for specs in runs.values():
        for spec in specs:
            ensure_run(spec, opts.root / "configs")
    scores = {}
    for v in VARIANTS:
        per_seed = [evaluate_stages(spec, scale.plan, [spec.n_stages]) for spec in runs[v.name]]
        scores[v.name] = {(t, m): s for (t, m, subject, _), s in over_seeds(per_seed).items() if subject is None}
    keys = list(dict.fromkeys(key for by_key in scores.values() for key in by_key))
    chance = {key: s.chance for by_key in scores.values() for key, s in by_key.items()}
    columns = [f"{t} {m}" + (f" (chance {chance[t, m]:.3g})" if chance[t, m] is not None else "") for t, m in keys]
    rows = [variant_row(v, runs[v.name], scores[v.name], keys) for v in VARIANTS]
    table = Table("Nine-layer comparison at equal tokens", [
        "variant", "substrate", "total params", "trainable params by stage", "training tokens", "training FLOPs",
        "wall (s)", "final val loss", *columns], rows,
        "Wall time and final validation loss (nats/token): "
        f"{'mean ± sd over seeds' if opts.seeds > 1 else 'one seed'}. Scores of the final models: "
        f"{seed_note(opts.seeds)}. FLOPs count what each stage computes (frozen blocks forward only).")
    curves = {v.name: mean_val_curve(runs[v.name]) for v in VARIANTS}
    reference = configs["constructive"]
    tokens = sum(s.tokens for s in reference.growth.stages)
    description = (f"Constructive vs monolithic training at {opts.scale} scale: d_model {reference.model.d_model}, "
                   f"context {reference.model.context}, data {', '.join(reference.data.sources)}, {tokens:,} tokens "
                   f"per run, {opts.seeds} seed(s) per variant; all runs share one tokenizer and one set of shards.")
    return write_study(opts.root, "nine-layer", description,
                       {spec.label: spec.path for specs in runs.values() for spec in specs}, [table],
                       {"val-loss-vs-flops": plot_loss_vs_flops(curves)})
