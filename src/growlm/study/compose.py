"""The composition study: expert A (English + Russian) and expert B (English + Chinese) grown on one frozen
substrate with one tokenizer, merged by averaging their logits (mean_logits, as the paper does), and all three
evaluated alike.

configs/compose-study.toml holds the shared run config plus [experts] NAME = [sources]. The tokenizer is mined
once from the union of the experts' sources; the substrate and the held-out shards (every source's validation
documents, the same documents each expert holds out) are built once too. Reported for A, B and the composition:
validation loss per language (the perplexity task on those held-out shards), translation BLEU and chrF in the four
directions, and the multiple-choice tasks, each with intervals; one table, one plot, and a plain statement of every
language on which the composition's loss is not at least as good as the better expert's.

Budgets: cpu trains 200k tokens per expert (depth 3, d_model 256) and scores 20 held-out documents per language,
6 pairs per translation direction, MMLU (1 question per subject), ARC-Easy, ARC-Challenge and BoolQ (30 each); the
smoke scale swaps the help pages for the (much smaller) fortune files.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from growlm.analysis.tables import Table
from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.study.evaluation import EvalPlan, OverSeeds, evaluate_model, over_seeds, records, seed_note
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import RunSpec, configure, ensure_run, read_config_data, say, shared_inputs
from growlm.study.scales import PAPER, SMOKE, StudyScale, stage_tokens

CONFIG = "compose-study.toml"
MODE = "mean_logits"
LANGUAGES = ("en", "ru", "zh")
MULTIPLE_CHOICE = (("mmlu", 1), ("arc_easy", 30), ("arc_challenge", 30), ("boolq", 30))
SCALES = {
    "smoke": StudyScale({**SMOKE, **stage_tokens([256, 256, 256])},
                        EvalPlan((("perplexity", 2), ("translation", 1), ("arc_easy", 2)), max_new_tokens=4)),
    "cpu": StudyScale({}, EvalPlan((("perplexity", 20), ("translation", 6), *MULTIPLE_CHOICE), max_new_tokens=48)),
    "paper": StudyScale({**PAPER, **stage_tokens([100_000_000] * 3)},
                        EvalPlan((("perplexity", None), ("translation", None),
                                  *((task, None) for task, _ in MULTIPLE_CHOICE)))),
}
SMOKE_EXPERTS = {"A": ["fortunes-en", "fortunes-ru"], "B": ["fortunes-en", "fortunes-zh"]}


def experts_and_config(scale: str, sets: list[str]) -> tuple[dict[str, list[str]], RunConfig]:
    """Each expert's sources, and the shared config whose data.sources is their union (for the tokenizer)."""
    data = read_config_data(CONFIG)
    experts = data.pop("experts", None)
    if not isinstance(experts, dict) or len(experts) < 2 or not all(
            isinstance(v, list) and v and all(isinstance(s, str) for s in v) for v in experts.values()):
        raise GrowlmError(f"{CONFIG}: [experts] must name at least two experts, each a list of data sources")
    experts = SMOKE_EXPERTS if scale == "smoke" else experts
    union = list(dict.fromkeys(s for sources in experts.values() for s in sources))
    return experts, configure(data, {**SCALES[scale].values, "data.sources": union}, sets, CONFIG)


def base_config(scale: str, sets: list[str]) -> RunConfig:
    return experts_and_config(scale, sets)[1]


def ensure_composition(experts: list[Path], out: Path) -> Path:
    """Compose the experts into out, or reuse a composition of exactly these expert weights."""
    from growlm.compose import compose, expert_sha256, is_composition, read_composition

    if is_composition(out):
        recorded = read_composition(out)
        same = [e["sha256"] for e in recorded["experts"]] == [expert_sha256(e) for e in experts]
        if same and recorded["mode"] == MODE:
            say(f"reusing composition {out}")
            return out
    say(f"composing {', '.join(map(str, experts))} into {out} ({MODE})")
    compose(experts, out, MODE, force=True)
    return out


def headline(scores: dict[tuple, OverSeeds]) -> dict[tuple[str, str], OverSeeds]:
    """Scores for the table: every headline (task, metric) except perplexity's ppl and bpb (loss says it)."""
    return {(t, m): s for (t, m, subject, _), s in scores.items()
            if subject is None and (not t.startswith("perplexity/") or m == "loss")}


def verdict(models: dict[str, dict], expert_names: list[str]) -> str:
    """Plain statement of each language where the composition's mean loss exceeds the better expert's."""
    worse, checked = [], []
    for lang in LANGUAGES:
        key = (f"perplexity/{lang}", "loss")
        if not all(key in models[name] for name in [*expert_names, "composition"]):
            continue
        checked.append(lang)
        best = min(expert_names, key=lambda name: models[name][key].mean)
        ours, theirs = models["composition"][key].mean, models[best][key].mean
        if ours > theirs:
            worse.append(f"{lang} ({ours:.4f} vs {theirs:.4f} nats/token for expert {best}, worse by "
                         f"{ours - theirs:.4f})")
    if not worse:
        return (f"The composition is at least as good as the better expert on every language measured "
                f"({', '.join(checked)}) by validation loss.")
    return f"The composition is NOT at least as good as the better expert on: {'; '.join(worse)}."


def comparison_plot(models: dict[str, dict], keys: list[tuple[str, str]]) -> Figure:
    """Three panels: loss per language, chrF per translation direction, multiple-choice accuracy; each model a
    marker with its 95% interval, side by side."""
    panels = [("validation loss (nats/token, lower is better)", [k for k in keys if k[0].startswith("perplexity/")]),
              ("translation chrF", [k for k in keys if k[0].startswith("translation/") and k[1] == "chrf"]),
              ("accuracy", [k for k in keys if k[1] == "acc"])]
    panels = [(title, ks) for title, ks in panels if ks]
    fig = Figure(figsize=(4.6 * len(panels), 4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    offset = 0.6 / len(models)
    for ax, (title, ks) in zip(axes, panels):
        for i, (name, scores) in enumerate(models.items()):
            points = [(j + (i - (len(models) - 1) / 2) * offset, scores[k]) for j, k in enumerate(ks) if k in scores]
            ax.errorbar([x for x, _ in points], [c.mean for _, c in points],
                        yerr=[[c.mean - c.ci_low for _, c in points], [c.ci_high - c.mean for _, c in points]],
                        fmt="o", capsize=3, color=f"C{i}", label=name)
        chance = {scores[k].chance for scores in models.values() for k in ks if k in scores} - {None}
        if title == "accuracy" and len(chance) == 1:
            ax.axhline(chance.pop(), color="0.3", ls="--", lw=1, label="chance")
        ax.set_xticks(range(len(ks)), [k[0].split("/")[-1] for k in ks], rotation=30, fontsize=8)
        ax.set_xlim(-0.5, len(ks) - 0.5)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Experts and their composition (95% intervals over items)", fontsize=11)
    return fig


def run(opts: StudyOptions) -> Path:
    scale = SCALES[opts.scale]
    experts, base = experts_and_config(opts.scale, opts.sets)
    inputs = shared_inputs(base, opts.root / "inputs")
    heldout = Path(inputs["data.shards"])
    names = list(experts)
    runs = {name: [RunSpec(f"{name}/seed-{s}", opts.root / "runs" / name / f"seed-{s}",
                           configure(base, {**inputs, "data.shards": "", "data.sources": experts[name],
                                            "train.seed": s, "name": f"expert-{name}-seed-{s}"}))
                   for s in opts.seed_list] for name in names}
    for specs in runs.values():
        for spec in specs:
            ensure_run(spec, opts.root / "configs")
    per_model: dict[str, list] = {name: [] for name in [*names, "composition"]}
    for s in opts.seed_list:
        composed = ensure_composition([runs[name][s].final_model for name in names],
                                      opts.root / "composed" / f"seed-{s}" / "model")
        models = {name: (runs[name][s].final_model, runs[name][s].final_model.parent / "eval") for name in names}
        models["composition"] = (composed, composed.parent / "eval")
        for name, (model, results) in models.items():
            scores = evaluate_model(model, results, scale.plan, f"{name} seed {s}", shards=heldout)
            per_model[name].append(records(scores, 0))
    models = {name: headline(over_seeds(per_seed)) for name, per_seed in per_model.items()}
    keys = list(dict.fromkeys(k for scores in models.values() for k in scores))
    chance = {k: s.chance for scores in models.values() for k, s in scores.items()}
    labels = {name: f"{name} ({' + '.join(experts[name])})" for name in names}
    labels["composition"] = f"composition ({MODE})"
    statement = verdict(models, names)
    table = Table("Experts and their composition", ["model", *(
        f"{t} {m}" + (f" (chance {chance[t, m]:.3g})" if chance[t, m] is not None else "") for t, m in keys)],
        [[labels[name], *(scores[k].cell() if k in scores else None for k in keys)] for name, scores in models.items()],
        f"{statement} Cells: {seed_note(opts.seeds)}. perplexity/LANG loss: nats/token on held-out documents of "
        f"that language ({heldout}).")
    description = (f"Two experts on one frozen {base.substrate.kind} substrate and one tokenizer at {opts.scale} "
                   f"scale (d_model {base.model.d_model}, depth {sum(s.add_blocks for s in base.growth.stages)}, "
                   f"{sum(s.tokens for s in base.growth.stages):,} tokens each), composed by {MODE}. {statement}")
    return write_study(opts.root, "compose", description,
                       {spec.label: spec.path for specs in runs.values() for spec in specs}, [table],
                       {"experts-vs-composition": comparison_plot(models, keys)})
