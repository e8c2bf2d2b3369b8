"""growlm's Python API: what the CLI verbs call, for notebooks and scripts.

import growlm
run = growlm.grow("configs/demo.toml", out="runs/demo", overrides=["train.lr=1e-3"])
model, tokenizer = growlm.load(run.stage_model())
print(growlm.generate(run.stage_model(), "ROMEO:", max_new_tokens=50))
results = growlm.evaluate(run.stage_model(), "arc_easy,mmlu", limit=50)
growlm.compose([expert_a, expert_b], out="composed")
growlm.grow(more_stages_config, out="runs/more", start=growlm.Branch(run.run.path))
report = growlm.run_study("growth-operators", scale="smoke", budgets=(1.0, 2.0))
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from growlm.errors import GrowlmError
from growlm.loading import device_for
from growlm.train.start import Branch, New, Resume, Start  # noqa: F401 (Branch, Resume: exported for grow's start)

if TYPE_CHECKING:
    from growlm.analysis.report import ReportFiles
    from growlm.composition.record import Calibration, Composition
    from growlm.evals.by_depth import RunEvaluation
    from growlm.evals.records import EvalResults
    from growlm.study.definition import Study
    from growlm.train.recipe import GrowResult


def grow(
    config=None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    start: Start = New(),
    check_memory: bool = True,
) -> GrowResult:
    """Train by a growth plan: `config` is a TOML path or a growlm.config.RunConfig (None to resume).

    `start`, how the run starts (growlm.train.start, exported here): New() a new run in `out`, New(force=True)
    replacing what is there; Resume() continues the run in `out`; Branch(base) starts from the finished run
    `base`, whose stages are the config's first ones, and trains only the later stages. (These replace the
    resume=, force= and base= flags of earlier versions: one argument, so no two of them can contradict.)

    Returns a GrowResult: .run (the RunDir), .summaries (one train.records.StageSummary per stage), .stage_model(k).
    """
    from growlm.train.recipe import grow as run_recipe

    return run_recipe(config, out, list(overrides), start, check_memory)


def export(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write a training checkpoint (RUN/checkpoints/step-...) as an exported model folder."""
    from growlm.train.export import export_checkpoint

    return export_checkpoint(Path(checkpoint), Path(out), force)


def load(path: str | Path, device: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) of an exported or composed model folder."""
    from growlm.loading import load_lm

    return load_lm(path, device_for(device))


def evaluate(
    model: str | Path,
    tasks: str = "arc_easy",
    device: str = "auto",
    out: str | Path | None = None,
    force: bool = False,
    **settings: Any,
) -> EvalResults:
    """Score a model folder on comma-separated tasks; `settings` are growlm.evals.settings.EvalSettings fields
    (limit, shots, protocol, ...). Returns the EvalResults (growlm.evals.records: .scores, .tasks, .to_json());
    with `out`, also writes them there as `growlm eval` does (`force` replaces an earlier file)."""
    from growlm.evals.results import check_results_path, write_results
    from growlm.evals.tasks import evaluate as run_tasks

    chosen, runs = _eval_request(tasks, settings)
    if out is not None:
        check_results_path(Path(out), Path(model), force)
    results = run_tasks(Path(model), runs, chosen, device_for(device))
    if out is not None:
        write_results(Path(out), results, force)
    return results


def evaluate_run(
    run: str | Path,
    tasks: str = "arc_easy",
    device: str = "auto",
    force: bool = False,
    announce: Callable[[str], None] | None = None,
    **settings: Any,
) -> RunEvaluation:
    """Evaluate every stage model of a growth run, as `growlm eval-run` does, holding the run's lock: each stage's
    results beside its model and the run's depth x task tables (JSON, CSV, plot; `force` replaces earlier ones).
    `settings` as for evaluate; `announce` (e.g. print) is told each stage as it starts. Returns the
    RunEvaluation (growlm.evals.by_depth: .stages, each with its EvalResults; .rows; .paths written)."""
    from growlm.evals.by_depth import evaluate_run as evaluate_stages

    chosen, runs = _eval_request(tasks, settings)
    return evaluate_stages(Path(run), runs, chosen, device_for(device), force, announce)


def _eval_request(tasks: str, settings: dict[str, Any]):
    """The EvalSettings (progress bars off unless asked) and the parsed task list of an evaluation request."""
    from dataclasses import fields

    from growlm.evals.settings import EvalSettings
    from growlm.evals.tasks import parse_tasks

    known = {f.name for f in fields(EvalSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise GrowlmError(f"no evaluation setting {', '.join(unknown)}; the settings: {', '.join(sorted(known))}")
    chosen = EvalSettings(**{"progress": False, **settings})
    return chosen, parse_tasks(tasks, chosen.protocol)


def generate(model: str | Path, prompt: str, device: str = "auto", **sampling: Any) -> str:
    """The continuation of `prompt`; `sampling`: max_new_tokens, temperature, top_k, top_p, seed, stop."""
    return "".join(stream(model, prompt, device, **sampling))


def stream(model: str | Path, prompt: str, device: str = "auto", **sampling: Any) -> Iterator[str]:
    """The continuation of `prompt` piece by piece as it is generated (`growlm generate` prints each as it comes);
    `sampling` as for generate. The settings are checked and the model loaded before this returns."""
    from growlm.generation import stream_from_folder

    return stream_from_folder(model, prompt, device_for(device), **sampling)


def report(run_or_study: str | Path, out: str | Path | None = None, force: bool = False) -> ReportFiles:
    """Write the HTML report of a run or study directory (default RUN_OR_STUDY/report.html) and the same tables as
    Markdown beside it (.md); `force` replaces an earlier report. Returns the ReportFiles (.html, .markdown)."""
    from growlm.analysis.report import write_report

    return write_report(run_or_study, out, force)


def compose(
    experts: Sequence[str | Path],
    out: str | Path,
    mode: str = "mean_logits",
    weights: Sequence[float] | None = None,
    force: bool = False,
    copy: bool = False,
    calibrate_on: Sequence[str | Path] | None = None,
    calibrate_tokens: int = 16384,
    calibrate_steps: int = 40,
    device: str = "auto",
    switch_rate: float = 0.0,
) -> Composition:
    """Write a composed model folder from expert folders; returns its record (growlm.composition.record.
    Composition: .mode, .weights, .switch_rate, .experts, .calibration, .to_json()).

    mode: mean_logits (the paper), mean_probs, or posterior (each expert weighted by its posterior given the text
    so far; `weights` is then the prior and `switch_rate` the fixed-share rate, see docs/COMPOSITION.md)."""
    from growlm.composition.calibrate import calibrate_on_files
    from growlm.composition.folder import compose as write_composition

    def calibrate() -> Calibration:
        return calibrate_on_files(
            experts, calibrate_on, weights, mode, calibrate_tokens, calibrate_steps, device_for(device), switch_rate
        )

    return write_composition(
        experts, out, mode, weights, force, copy, switch_rate=switch_rate, calibrate=calibrate if calibrate_on else None
    )


def study_definition(name: str) -> Study:
    """The registered study `name` (growlm.study.registry.Study: its scales, options and run)."""
    from growlm.study.registry import load as load_study

    return load_study(name)


def run_study(
    name: str,
    scale: str = "cpu",
    out: str | Path | None = None,
    seeds: int | None = None,
    overrides: Sequence[str] = (),
    force: bool = False,
    **options: Any,
) -> Path:
    """Run (or resume) the study `name` at `scale` into `out` (default studies/NAME-SCALE); `options` are the
    study's own (its StudyOptions fields, e.g. budgets=(0.25, 1, 4) for growth-operators). Returns the report."""
    from growlm.study.definition import run_study as run_registered

    definition = study_definition(name)
    root = Path(out) if out is not None else Path("studies") / f"{name}-{scale}"
    known = {f.name for f in definition.own_options()}
    unknown = sorted(set(options) - known)
    if unknown:
        raise GrowlmError(f"{name} takes no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}")
    opts = definition.options(root=root, scale=scale, seeds=seeds or 0, sets=tuple(overrides), **options)
    return run_registered(definition, opts, force)
