"""The composition study: expert A (English + Russian) and expert B (English + Chinese) grown on one frozen
substrate with one tokenizer, merged four ways, and all evaluated alike: mean_logits (the paper), mean_probs,
posterior (each expert weighted by its posterior given the text so far) and fixed-share (the posterior with a
switch rate, so it follows text that changes language).

configs/compose-study.toml holds the shared run config plus [experts] NAME = [sources]. The tokenizer is mined
once from the union of the experts' sources; the substrate and the held-out shards (every source's validation
documents, the same documents each expert holds out) are built once too. A mixed-language held-out text is built
from those validation documents: each mixed document alternates languages paragraph by paragraph (en, ru, zh, en,
...). Reported for A, B and every composition: loss and bits per byte per language and on the mixed text (the
perplexity task), translation BLEU and chrF in the four directions, and the multiple-choice tasks, each with
intervals; one table, one plot, and a plain statement of every language on which a composition is worse than the
better expert, and of which models the adaptive compositions beat on the mixed text.

Budgets: cpu trains 200k tokens per expert (depth 3, d_model 256) and scores 20 held-out documents per language
(and 20 mixed documents), 6 pairs per translation direction, MMLU (1 question per subject), ARC-Easy,
ARC-Challenge and BoolQ (30 each); at cpu scale the mean_probs, posterior and fixed-share compositions are scored
on the perplexity sets only (every task sits at chance there). The smoke scale swaps the help pages for the (much
smaller) fortune files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from growlm.analysis.tables import Table
from growlm.config import Patch, RunConfig, combine
from growlm.errors import GrowlmError
from growlm.evals.settings import EvalSettings
from growlm.evals.stats import RESAMPLES, paired_improvement
from growlm.study.definition import Study
from growlm.study.evaluation import EvalPlan, OverSeeds, evaluate_model, over_seeds, records, seed_note
from growlm.study.options import StudyOptions
from growlm.study.output import write_study
from growlm.study.runs import RunSpec, configure, ensure_run, read_config_data, say, shared_inputs
from growlm.study.scales import PAPER, SMOKE, StudyScale, stage_tokens, train

CONFIG = "compose-study.toml"
FIXED_SHARE_RATE = 0.01
COMPOSITIONS = {
    "mean_logits": ("mean_logits", 0.0),
    "mean_probs": ("mean_probs", 0.0),
    "posterior": ("posterior", 0.0),
    "fixed-share": ("posterior", FIXED_SHARE_RATE),
}
STATIC = ("mean_logits", "mean_probs")
ADAPTIVE = ("posterior", "fixed-share")
LANGUAGES = ("en", "ru", "zh")
MIXED = "mixed"
MIXED_PARAGRAPHS = 4  # paragraphs per language in one mixed document
MULTIPLE_CHOICE = (("mmlu", 1), ("arc_easy", 30), ("arc_challenge", 30), ("boolq", 30))
SCALES = {
    "cpu": StudyScale(
        patch={},
        about="2 CPU cores, about 1 h",
        plan=EvalPlan((("perplexity", 20), ("translation", 6), *MULTIPLE_CHOICE), max_new_tokens=48),
    ),
    "paper": StudyScale(
        patch=combine(PAPER, stage_tokens([100_000_000] * 3)),
        about="the paper's sizes, for GPUs",
        plan=EvalPlan((("perplexity", None), ("translation", None), *((task, None) for task, _ in MULTIPLE_CHOICE))),
    ),
    "smoke": StudyScale(
        patch=combine(SMOKE, stage_tokens([256, 256, 256])),
        about="tiny, seconds, to check an install",
        plan=EvalPlan((("perplexity", 2), ("translation", 1), ("arc_easy", 2)), max_new_tokens=4),
    ),
}
# The compositions beyond the paper's, at cpu scale: the perplexity sets only (every other task is at chance).
PERPLEXITY_ONLY = {"cpu": EvalPlan((("perplexity", 20),))}
SMOKE_EXPERTS = {"A": ["fortunes-en", "fortunes-ru"], "B": ["fortunes-en", "fortunes-zh"]}


@dataclass(frozen=True)
class TextPlan(EvalPlan):
    """The perplexity task on one text file (documents separated by blank lines) instead of the shards."""

    text: Path | None = None

    def settings(self, limit: int | None, shards: Path | None) -> EvalSettings:
        return EvalSettings(limit=limit, max_new_tokens=self.max_new_tokens, task_files={"perplexity": self.text})


def experts_and_config(scale: str, sets: Sequence[str]) -> tuple[dict[str, list[str]], RunConfig]:
    """Each expert's sources, and the shared config whose data.sources is their union (for the tokenizer)."""
    data = read_config_data(CONFIG)
    experts = data.pop("experts", None)
    if (
        not isinstance(experts, dict)
        or len(experts) < 2
        or not all(isinstance(v, list) and v and all(isinstance(s, str) for s in v) for v in experts.values())
    ):
        raise GrowlmError(f"{CONFIG}: [experts] must name at least two experts, each a list of data sources")
    experts = SMOKE_EXPERTS if scale == "smoke" else experts
    union = list(dict.fromkeys(s for sources in experts.values() for s in sources))
    return experts, configure(data, SCALES[scale].patch, {"data": {"sources": union}}, sets=sets, source=CONFIG)


def base_config(opts: StudyOptions) -> RunConfig:
    return experts_and_config(opts.scale, opts.sets)[1]


def ensure_composition(experts: list[Path], out: Path, mode: str, switch_rate: float) -> Path:
    """Compose the experts into out, or reuse a composition of exactly these expert weights and settings."""
    from growlm.composition import compose, expert_sha256, is_composition, read_composition

    if is_composition(out):
        recorded = read_composition(out)
        same = [e.sha256 for e in recorded.experts] == [expert_sha256(e) for e in experts]
        if same and recorded.mode == mode and recorded.switch_rate == switch_rate:
            say(f"reusing composition {out}")
            return out
    say(f"composing {', '.join(map(str, experts))} into {out} ({mode}, switch rate {switch_rate})")
    compose(experts, out, mode, force=True, switch_rate=switch_rate)
    return out


def _paragraphs(document: str) -> list[str]:
    return [p for p in (re.sub(r"\s+", " ", line).strip() for line in document.splitlines()) if p]


def mixed_documents(by_language: dict[str, list[str]], paragraphs: int = MIXED_PARAGRAPHS) -> list[str]:
    """Documents alternating languages paragraph by paragraph: document k takes the paragraphs of document k + j
    of the j-th language in turn (languages in LANGUAGES order; the held-out documents of the languages are the
    same pages, so the offset keeps a paragraph and its translation out of one document), at most `paragraphs`
    from each."""
    languages = [lang for lang in LANGUAGES if by_language.get(lang)]
    if len(languages) < 2:
        raise GrowlmError(
            f"a mixed-language text needs held-out documents in two or more of {LANGUAGES}; the "
            f"shards have {sorted(by_language)}"
        )
    count = min(len(by_language[lang]) for lang in languages)
    out = []
    for k in range(count):
        split = [_paragraphs(by_language[lang][(k + j) % count])[:paragraphs] for j, lang in enumerate(languages)]
        mixed = [part[i] for i in range(max(map(len, split))) for part in split if i < len(part)]
        if mixed:
            out.append("\n".join(mixed))
    return out


def write_mixed_text(heldout: Path, out: Path) -> Path:
    """The mixed-language held-out text (growlm eval's perplexity text-file format), rebuilt only if it changed."""
    from growlm.evals.perplexity import shard_documents
    from growlm.io.atomic import atomic_write_text

    text = "\n\n".join(mixed_documents(shard_documents(heldout))) + "\n"
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        atomic_write_text(out, text)
    return out


def headline(scores: dict[tuple, OverSeeds]) -> dict[tuple[str, str], OverSeeds]:
    """Scores for the table: every headline (task, metric) except perplexity's ppl (loss says it)."""
    return {
        (t, m): s
        for (t, m, subject, _), s in scores.items()
        if subject is None and (not t.startswith("perplexity/") or m in ("loss", "bpb"))
    }


def verdict(models: dict[str, dict], expert_names: list[str], composed: str = "composition") -> str:
    """Plain statement of each language where the composition's mean loss exceeds the better expert's."""
    worse, checked = [], []
    label = "composition" if composed == "composition" else f"{composed} composition"
    for lang in LANGUAGES:
        key = (f"perplexity/{lang}", "loss")
        if not all(key in models[name] for name in [*expert_names, composed]):
            continue
        checked.append(lang)
        best = min(expert_names, key=lambda name: models[name][key].mean)
        ours, theirs = models[composed][key].mean, models[best][key].mean
        if ours > theirs:
            worse.append(
                f"{lang} ({ours:.4f} vs {theirs:.4f} nats/token for expert {best}, worse by {ours - theirs:.4f})"
            )
    if not worse:
        return (
            f"The {label} is at least as good as the better expert on every language measured "
            f"({', '.join(checked)}) by validation loss."
        )
    return f"The {label} is NOT at least as good as the better expert on: {'; '.join(worse)}."


def mixed_items(model: Path) -> dict[str, tuple[float, int]]:
    """(nll, tokens) of every mixed-language document the model was scored on, by document id."""
    from growlm.evals.records import read_results

    results = read_results(model.parent / "eval-mixed" / "perplexity.json")
    return {r.id: (r.nll, r.tokens) for r in results.task("perplexity").perplexity_items()}


def mixed_verdict(models: dict[str, dict], items: dict[str, dict], adaptive: str, rivals: list[str]) -> str:
    """Whether the adaptive composition beats (strictly lower loss) every rival on the mixed-language text, with
    each paired difference (same documents), its 95% bootstrap interval and one-sided p-value."""
    key = (f"perplexity/{MIXED}", "loss")
    if key not in models.get(adaptive, {}):
        return ""
    ours = models[adaptive][key].mean
    rivals = [name for name in rivals if key in models[name]]
    lost = [f"{name} ({models[name][key].mean:.4f})" for name in rivals if models[name][key].mean <= ours]
    pairs = []
    for name in rivals:
        rows = [(items[name][doc][0], *items[adaptive][doc]) for doc in items[adaptive]]  # rival nll, ours, tokens
        gain, (low, high), p = paired_improvement(rows, lambda s: (s[0] - s[1]) / s[2])
        shown = f"p < {1 / RESAMPLES:g}" if p == 0 else f"p = {p:.3f}"  # no resample went the other way
        pairs.append(f"{name} {gain:+.4f} [{low:+.4f}, {high:+.4f}], {shown}")
    paired = (
        f" Paired by document ({len(items[adaptive])} documents; rival's loss minus {adaptive}'s, 95% "
        f"bootstrap interval, one-sided bootstrap p): {'; '.join(pairs)}."
    )
    if not lost:
        return (
            f"On mixed-language text {adaptive} ({ours:.4f} nats/token) beats every expert and every static mode."
            + paired
        )
    return f"On mixed-language text {adaptive} ({ours:.4f} nats/token) does NOT beat: {', '.join(lost)}." + paired


def comparison_plot(models: dict[str, dict], keys: list[tuple[str, str]]) -> Figure:
    """Three panels: loss per language, chrF per translation direction, multiple-choice accuracy; each model a
    marker with its 95% interval, side by side."""
    panels = [
        (
            "validation loss (nats/token, lower is better)",
            [k for k in keys if k[0].startswith("perplexity/") and k[1] == "loss"],
        ),
        ("translation chrF", [k for k in keys if k[0].startswith("translation/") and k[1] == "chrf"]),
        ("accuracy", [k for k in keys if k[1] == "acc"]),
    ]
    panels = [(title, ks) for title, ks in panels if ks]
    fig = Figure(figsize=(5.2 * len(panels), 4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    offset = 0.6 / len(models)
    for ax, (title, ks) in zip(axes, panels):
        for i, (name, scores) in enumerate(models.items()):
            points = [(j + (i - (len(models) - 1) / 2) * offset, scores[k]) for j, k in enumerate(ks) if k in scores]
            ax.errorbar(
                [x for x, _ in points],
                [c.mean for _, c in points],
                yerr=[[c.mean - c.ci_low for _, c in points], [c.ci_high - c.mean for _, c in points]],
                fmt="o",
                capsize=3,
                color=f"C{i}",
                label=name,
            )
        chance = {scores[k].chance for scores in models.values() for k in ks if k in scores} - {None}
        if title == "accuracy" and len(chance) == 1:
            ax.axhline(chance.pop(), color="0.3", ls="--", lw=1, label="chance")
        ax.set_xticks(range(len(ks)), [k[0].split("/")[-1] for k in ks], rotation=30, fontsize=8)
        ax.set_xlim(-0.5, len(ks) - 0.5)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Experts and their compositions (95% intervals over items)", fontsize=11)
    return fig


def _train_experts(
    opts: StudyOptions, experts: dict[str, list[str]], base: RunConfig, inputs: Patch
) -> dict[str, list[RunSpec]]:
    runs = {
        name: [
            RunSpec(
                f"{name}/seed-{s}",
                opts.root / "runs" / name / f"seed-{s}",
                configure(
                    base,
                    inputs,
                    {"data": {"shards": "", "sources": sources}, "name": f"expert-{name}-seed-{s}"},
                    train(seed=s),
                ),
            )
            for s in opts.seed_list
        ]
        for name, sources in experts.items()
    }
    for specs in runs.values():
        for spec in specs:
            ensure_run(spec, opts.root / "configs")
    return runs


def _evaluate_seed(
    opts: StudyOptions, runs: dict[str, list[RunSpec]], seed: int, heldout: Path, mixed: Path
) -> dict[str, list]:
    """Every expert and composition of one seed, on the scale's plan plus the mixed-language text."""
    scale = SCALES[opts.scale]
    experts = [runs[name][seed].final_model for name in runs]
    models = {name: (spec[seed].final_model, scale.plan) for name, spec in runs.items()}
    for name, (mode, rate) in COMPOSITIONS.items():
        folder = ensure_composition(experts, opts.root / "composed" / f"seed-{seed}" / name / "model", mode, rate)
        plan = scale.plan if name == "mean_logits" else PERPLEXITY_ONLY.get(opts.scale, scale.plan)
        models[name] = (folder, plan)
    limit = dict(scale.plan.tasks).get("perplexity")
    out = {}
    for name, (model, plan) in models.items():
        label = f"{name} seed {seed}"
        scores = evaluate_model(model, model.parent / "eval", plan, label, shards=heldout)
        scores += evaluate_model(
            model,
            model.parent / "eval-mixed",
            TextPlan((("perplexity", limit),), text=mixed),
            f"{label} (mixed-language text)",
        )
        out[name] = (records(scores, 0), {f"seed {seed} {doc}": row for doc, row in mixed_items(model).items()})
    return out


def run(opts: StudyOptions) -> Path:
    experts, base = experts_and_config(opts.scale, opts.sets)
    inputs = shared_inputs(base, opts.root / "inputs")
    heldout = Path(inputs["data"]["shards"])
    mixed = write_mixed_text(heldout, opts.root / "inputs" / f"{MIXED}.txt")
    runs = _train_experts(opts, experts, base, inputs)
    names = list(experts)
    per_model: dict[str, list] = {name: [] for name in [*names, *COMPOSITIONS]}
    items: dict[str, dict] = {name: {} for name in per_model}
    for s in opts.seed_list:
        for name, (recs, docs) in _evaluate_seed(opts, runs, s, heldout, mixed).items():
            per_model[name].append(recs)
            items[name].update(docs)
    models = {name: headline(over_seeds(per_seed)) for name, per_seed in per_model.items()}
    keys = list(dict.fromkeys(k for scores in models.values() for k in scores))
    chance = {k: s.chance for scores in models.values() for k, s in scores.items()}
    labels = {name: f"{name} ({' + '.join(experts[name])})" for name in names}
    labels.update(
        {
            name: f"composition {name}" + (f" (switch rate {rate})" if rate else "")
            for name, (_, rate) in COMPOSITIONS.items()
        }
    )
    statement = " ".join(
        [
            *(verdict(models, names, name) for name in COMPOSITIONS),
            *(mixed_verdict(models, items, name, [*names, *STATIC]) for name in ADAPTIVE),
        ]
    )
    table = Table(
        "Experts and their compositions",
        [
            "model",
            *(f"{t} {m}" + (f" (chance {chance[t, m]:.3g})" if chance[t, m] is not None else "") for t, m in keys),
        ],
        [[labels[name], *(scores[k].cell() if k in scores else None for k in keys)] for name, scores in models.items()],
        f"{statement} Cells: {seed_note(opts.seeds)}. perplexity/LANG: loss in nats/token and bits per byte on "
        f"held-out documents of that language ({heldout}); perplexity/{MIXED}: documents alternating en, ru and zh "
        f"paragraph by paragraph, built from the same held-out documents ({mixed}).",
    )
    description = (
        f"Two experts on one frozen {base.substrate.kind} substrate and one tokenizer at {opts.scale} "
        f"scale (d_model {base.model.d_model}, depth {sum(s.add_blocks for s in base.growth.stages)}, "
        f"{sum(s.tokens for s in base.growth.stages):,} tokens each), composed by "
        f"{', '.join(COMPOSITIONS)}. {statement}"
    )
    return write_study(
        opts.root,
        "compose",
        description,
        {spec.label: spec.path for specs in runs.values() for spec in specs},
        [table],
        {"experts-vs-composition": comparison_plot(models, keys)},
    )


STUDY = Study("compose", SCALES, base_config, run)
