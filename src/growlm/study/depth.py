"""The depth study: the growth series (configs/growth-series.toml: one block at a time to depth 6, LoRA in stages
5-6), every stage's model evaluated.

Produces our equivalents of the paper's figures 1-3: the loss over all stages with each growth step marked, every
task by depth with 95% confidence bands and chance levels, an MMLU subject x depth heatmap; and one table per
depth (trainable parameters, cumulative tokens and FLOPs, validation loss, every task).

Budgets: cpu trains the config's 1.3M tokens (300k + 5 x 200k) and scores MMLU (20 questions per subject), ARC-Easy
and ARC-Challenge (500 each) and SQuAD (100) at every depth; paper trains 200M tokens per stage at d_model 4096
and scores the full sets (our named corpora are a few million tokens: at paper scale point data.sources at a large
corpus, e.g. --set "data.sources=['/data/corpus.jsonl']").
"""

from __future__ import annotations

from pathlib import Path

from growlm.analysis.plots import plot_loss_curve, plot_metric_by_depth, plot_subject_heatmap
from growlm.analysis.tables import Table
from growlm.config import RunConfig, combine
from growlm.study.definition import Study
from growlm.study.evaluation import (
    EvalPlan,
    OverSeeds,
    evaluate_stages,
    mean_records,
    mean_sd_cell,
    over_seeds,
    seed_note,
)
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import RunSpec, configure, ensure_run, read_config_data, shared_inputs
from growlm.study.scales import PAPER_WIDE, SMOKE, StudyScale, stage_tokens, train

CONFIG = "growth-series.toml"
STAGES = 6
SCALES = {
    "cpu": StudyScale(
        patch={},
        about="2 CPU cores, at most 2 h",
        plan=EvalPlan((("mmlu", 20), ("arc_easy", 500), ("arc_challenge", 500), ("squad", 100))),
    ),
    "paper": StudyScale(
        patch=combine(PAPER_WIDE, stage_tokens([200_000_000] * STAGES)),
        about="the paper's sizes (d_model 4096), for GPUs",
        plan=EvalPlan((("mmlu", None), ("arc_easy", None), ("arc_challenge", None), ("squad", None))),
    ),
    "smoke": StudyScale(
        patch=combine(SMOKE, stage_tokens([256] * STAGES)),
        about="tiny, seconds, to check an install",
        plan=EvalPlan((("mmlu", 1), ("arc_easy", 2), ("squad", 1)), max_new_tokens=4),
    ),
}


def _plan_text(plan: EvalPlan) -> str:
    return ", ".join(
        f"{task} ({f'first {limit}' if limit else 'all'}{' per subject' if task == 'mmlu' else ''})"
        for task, limit in plan.tasks
    )


def depth_table(runs: list[RunSpec], scores: dict[tuple, OverSeeds], seeds: int) -> Table:
    summaries = [run.summary() for run in runs]
    series = list(dict.fromkeys((task, metric) for task, metric, subject, _ in scores if subject is None))
    chance = {(t, m): s.chance for (t, m, subject, _), s in scores.items() if subject is None}
    columns = [
        "stage",
        "depth",
        "LoRA rank",
        "trainable params",
        "tokens (cum.)",
        "training FLOPs (cum.)",
        "val loss after growth",
        "val loss",
        *(f"{t} {m}" + (f" (chance {chance[t, m]:.3g})" if chance[t, m] is not None else "") for t, m in series),
    ]
    rows = []
    for k, stage in enumerate(summaries[0]):
        cells = [scores.get((t, m, None, stage.depth)) for t, m in series]
        rows.append(
            [
                stage.stage,
                stage.depth,
                stage.lora_rank or None,
                stage.trainable_params,
                stage.tokens,
                stage.flops,
                mean_sd_cell([s[k].val_loss_at_start for s in summaries]),
                mean_sd_cell([s[k].val_loss for s in summaries]),
                *(c.cell() if c else None for c in cells),
            ]
        )
    return Table(
        "Growth series by depth",
        columns,
        rows,
        f"Scores: {seed_note(seeds)}. val loss: nats/token on the held-out shards at the end of each stage; "
        "val loss after growth: the same, measured when the stage's new block has just been added and has "
        "not trained yet (its excess over the previous stage's val loss is the growth spike).",
    )


def base_config(opts: StudyOptions) -> RunConfig:
    return configure(read_config_data(CONFIG), SCALES[opts.scale].patch, sets=opts.sets, source=CONFIG)


def run(opts: StudyOptions) -> Path:
    scale = SCALES[opts.scale]
    base = base_config(opts)
    inputs = shared_inputs(base, opts.root / "inputs")
    runs = [
        RunSpec(
            f"seed-{s}",
            opts.root / "runs" / f"seed-{s}",
            configure(base, inputs, train(seed=s), {"name": f"growth-series-seed-{s}"}),
        )
        for s in opts.seed_list
    ]
    for spec in runs:
        ensure_run(spec, opts.root / "configs")
    per_seed = [evaluate_stages(spec, scale.plan, list(range(1, spec.n_stages + 1))) for spec in runs]
    scores = over_seeds(per_seed)
    mean = mean_records(scores)
    figures = {
        f"loss-over-stages-{spec.label}": plot_loss_curve(spec.metrics(), f"Loss over all stages: {spec.label}")
        for spec in runs
    }
    figures["scores-by-depth"] = plot_metric_by_depth(mean)
    if any(r.subject is not None for r in mean):
        figures["mmlu-subjects-by-depth"] = plot_subject_heatmap(mean, "mmlu")
    description = (
        f"The growth series at {opts.scale} scale: {base.growth.stages[-1].add_blocks} block per stage to "
        f"depth {sum(s.add_blocks for s in base.growth.stages)}, LoRA in stages "
        f"{', '.join(str(k + 1) for k, s in enumerate(base.growth.stages) if s.lora) or 'none'}; "
        f"d_model {base.model.d_model}, context {base.model.context}, data {', '.join(base.data.sources)}; "
        f"{opts.seeds} seed(s). Every stage's model scored (harness protocol) on {_plan_text(scale.plan)}."
    )
    return write_study(
        opts.root,
        "depth",
        description,
        {spec.label: spec.path for spec in runs},
        [depth_table(runs, scores, opts.seeds)],
        figures,
    )


STUDY = Study("depth", SCALES, base_config, run)
