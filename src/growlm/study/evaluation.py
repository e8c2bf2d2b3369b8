"""Evaluating a study's models (each task with its own item limit), reusing finished results, and summarising
scores over seeds.

Each (model, task) result is a growlm eval results file (format growlm-eval-v1) in the model's results folder,
plus "study_model_sha256": the hash of the model it scored. It is reused when the model and the evaluation
settings are unchanged.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from growlm.analysis.runs import EvalRecord
from growlm.analysis.tables import format_value
from growlm.errors import GrowlmError
from growlm.evals.by_depth import is_headline
from growlm.evals.records import EvalResults, Score, read_results
from growlm.evals.settings import EvalSettings
from growlm.io.atomic import atomic_write_json, atomic_write_text
from growlm.study.runs import RunSpec, say


@dataclass(frozen=True)
class EvalPlan:
    tasks: tuple[tuple[str, int | None], ...]  # (task as `growlm eval --tasks` names it, item limit or None)
    max_new_tokens: int | None = None  # generation cap for squad / translation (None: each task's default)

    def settings(self, limit: int | None, shards: Path | None) -> EvalSettings:
        return EvalSettings(limit=limit, max_new_tokens=self.max_new_tokens, shards=shards)


def model_sha256(model: Path) -> str:
    from growlm.composition.folder import COMPOSITION_FILE, expert_sha256, is_composition
    from growlm.io.hashing import sha256_file

    # composition.json records its experts' hashes, so it stands for the whole composed model.
    return sha256_file(model / COMPOSITION_FILE) if is_composition(model) else expert_sha256(model)


class Loaded:
    """A model folder loaded at most once, however many of a study's evaluations read it (and not at all when
    every one is reused from its results file)."""

    def __init__(self, model: Path):
        self.model, self._lm = model, None

    def get(self):
        if self._lm is None:
            from growlm.loading import device_for, load_lm

            self._lm = load_lm(self.model, device_for())
        return self._lm


def _reusable(out: Path, sha: str, settings: EvalSettings) -> EvalResults | None:
    """The results in `out` if they scored this model with these settings (None if not, or unreadable)."""
    try:
        cached = read_results(out) if out.is_file() else None
    except GrowlmError:
        return None
    if cached and cached.study_model_sha256 == sha and cached.settings.to_json() == settings.to_json():
        return cached
    return None


def _cached(model: Loaded, sha: str, out: Path, task: str, settings: EvalSettings, label: str) -> EvalResults:
    """The results of `task` on the model, reused from `out` when the model and settings are unchanged."""
    from growlm.evals.tasks import evaluate, parse_tasks
    from growlm.loading import device_for

    cached = _reusable(out, sha, settings)
    if cached is not None:
        say(f"reusing {out.stem} of {label}")
        return cached
    say(f"evaluating {label} on {out.stem}" + (f" (first {settings.limit} items)" if settings.limit else ""))
    tasks = parse_tasks(task, "harness")
    results = replace(evaluate(model.model, tasks, settings, device_for(), model.get()), study_model_sha256=sha)
    atomic_write_json(out, results.to_json())
    return results


def evaluate_model(model: Path, results: Path, plan: EvalPlan, label: str, shards: Path | None = None) -> list[Score]:
    """The scores of every task of the plan on the model."""
    sha, loaded = model_sha256(model), Loaded(model)
    scores = []
    for task, limit in plan.tasks:
        out = results / f"{task.replace(':', '-')}.json"
        scores += _cached(loaded, sha, out, task, plan.settings(limit, shards), label).scores
    return scores


def domain_texts(folder: Path, sources: tuple[str, ...], documents: int, chars: int = 4000) -> dict[str, Path]:
    """Held-out text of other named sources: `documents` documents of each, spread over the whole source, each
    cut to its first `chars` characters and written as one block (growlm eval's perplexity text-file format:
    blocks separated by blank lines); written once into `folder`."""
    from growlm.data.sources import SOURCES, read_source

    texts = {}
    for name in sources:
        path = texts[name] = folder / f"{name}.txt"
        if path.is_file():
            continue
        docs = [d.text for d in read_source(SOURCES[name], SOURCES[name].files()).documents]
        picked = docs[:: max(1, len(docs) // documents)][:documents]
        atomic_write_text(path, "\n\n".join(re.sub(r"\n\s*\n", "\n", d.strip()[:chars]) for d in picked) + "\n")
    return texts


def bits_per_byte(
    model: Path, results: Path, texts: dict[str, Path], limit: int | None, label: str
) -> dict[str, float | None]:
    """Bits per byte of the model on its own validation shards ("validation": the first `limit` documents) and on
    each held-out text."""
    sha, loaded = model_sha256(model), Loaded(model)
    settings = {"validation": EvalSettings(limit=limit)}
    settings.update({name: EvalSettings(task_files={"perplexity": path}) for name, path in texts.items()})
    out = {}
    for name, setting in settings.items():
        scored = _cached(loaded, sha, results / f"bpb-{name}.json", "perplexity", setting, label)
        rows = [s for s in scored.scores if s.metric == "bpb" and s.task.startswith("perplexity/")]
        out[name] = rows[0].value if len(rows) == 1 else None
    return out


def evaluate_stages(run: RunSpec, plan: EvalPlan, stages: list[int]) -> list[EvalRecord]:
    """Evaluate the run's stage models and write RUN/eval_by_depth.{json,csv,png} (as `growlm eval-run` does)."""
    from growlm.evals.by_depth import DepthRow, write_tables
    from growlm.model.folder import model_depth

    rows, out = [], []
    for stage in stages:
        model = run.stage_model(stage)
        depth = model_depth(model)
        scores = evaluate_model(model, model.parent / "eval", plan, f"{run.label} stage {stage} (depth {depth})")
        rows += [DepthRow(stage, depth, s) for s in scores]
        out += records(scores, depth)
    write_tables(
        run.path, "harness", rows, {"tasks": [list(t) for t in plan.tasks], "max_new_tokens": plan.max_new_tokens}
    )
    return out


def records(scores: list[Score], depth: int) -> list[EvalRecord]:
    """Scores as the analysis plots read them: MMLU's per-subject rows ("mmlu/anatomy") become subjects."""
    out = []
    for s in scores:
        task, subject = (s.task, None) if is_headline(s.task) else s.task.split("/", 1)
        out.append(EvalRecord(depth, task, s.metric, s.value, s.ci95[0], s.ci95[1], s.chance, s.n, subject))
    return out


@dataclass(frozen=True)
class OverSeeds:
    """One score over seeds: mean, sample sd (None for one seed) and the mean 95% item-bootstrap interval."""

    mean: float
    sd: float | None
    ci_low: float
    ci_high: float
    chance: float | None
    n: int

    def cell(self) -> str:
        spread = f" ± {format_value(self.sd)}" if self.sd is not None else ""
        return f"{format_value(self.mean)}{spread} [{format_value(self.ci_low)}, {format_value(self.ci_high)}]"


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def mean_sd_cell(values: list[float | None]) -> float | str | None:
    """A table cell for one number over seeds: the value (one seed), "mean ± sd", or None if a seed lacks it."""
    if not values or any(v is None for v in values):
        return None
    mean, sd = mean_sd(values)
    return mean if sd is None else f"{mean:.4g} ± {sd:.2g}"


def over_seeds(per_seed: list[list[EvalRecord]]) -> dict[tuple[str, str, str | None, int], OverSeeds]:
    """(task, metric, subject, depth) -> the score over seeds, for keys every seed has."""
    by_key: dict[tuple, list[EvalRecord]] = {}
    for seed_records in per_seed:
        for r in seed_records:
            by_key.setdefault((r.task, r.metric, r.subject, r.depth), []).append(r)
    out = {}
    for key, rs in by_key.items():
        if len(rs) == len(per_seed):
            mean, sd = mean_sd([r.value for r in rs])
            out[key] = OverSeeds(
                mean,
                sd,
                statistics.fmean(r.ci_low for r in rs),
                statistics.fmean(r.ci_high for r in rs),
                rs[0].chance,
                rs[0].n,
            )
    return out


def mean_records(summary: dict[tuple[str, str, str | None, int], OverSeeds]) -> list[EvalRecord]:
    """The means over seeds as records (for the by-depth plots and the heatmap)."""
    return [
        EvalRecord(depth, task, metric, s.mean, s.ci_low, s.ci_high, s.chance, s.n, subject)
        for (task, metric, subject, depth), s in summary.items()
    ]


def seed_note(seeds: int) -> str:
    if seeds == 1:
        return "one seed [95% bootstrap interval over items]"
    return f"mean ± sd over {seeds} seeds [95% bootstrap interval over items, averaged over seeds]"
