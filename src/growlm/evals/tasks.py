"""The task registry and one evaluation of one model.

A task is named NAME or NAME:SPLIT (e.g. arc_easy:validation, translation:en-zh); without a split the first
one listed is used, except under the paper protocol, which uses the split the author evaluated.

Adding a task: write evals/<name>.py with a runner

    def run(model, tokenizer, ctx: EvalContext) -> TaskResult

(and a run_paper of the same signature if the paper protocol covers the task), then add one TaskSpec to TASKS
below. Every runner takes exactly (model, tokenizer, ctx); tests/test_evals_tasks.py checks it.
- model, tokenizer: as evaluate() loads them; call the model only as docs/ARCHITECTURE.md (Contracts) says
  (harness.py scores
  log-likelihoods, decoding.py generates).
- ctx (EvalContext, settings.py): ctx.task, the registry name (one module may serve several entries, e.g.
  arc_easy and arc_challenge); ctx.split, already checked against TaskSpec.splits; ctx.settings, the EvalSettings
  (shots, limit, batch limits, seed, --task-file paths, ...); ctx.model_path, the model folder.
- The result: a TaskResult (records.py) whose scores are named after ctx.task; evaluate() labels it with the
  task as requested.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from growlm.errors import GrowlmError
from growlm.evals import arc, commonsense, mmlu, perplexity, squad, translation
from growlm.evals.records import EvalResults, TaskResult
from growlm.evals.settings import EvalContext, EvalSettings

Runner = Callable[[Any, Any, EvalContext], TaskResult]  # (model, tokenizer, ctx) -> TaskResult


@dataclass(frozen=True)
class TaskSpec:
    splits: tuple[str, ...]  # the first is the default
    run: Runner
    run_paper: Runner | None = None
    paper_split: str | None = None  # the split the author evaluated
    task_file: str = ""  # the local format --task-file accepts, if any

    def runner(self, protocol: str) -> Runner | None:
        return self.run_paper if protocol == "paper" else self.run


TASKS: dict[str, TaskSpec] = {
    "mmlu": TaskSpec(("test",), mmlu.run, mmlu.run_paper, "test", "cais/mmlu"),
    **{
        name: TaskSpec(("test", "validation"), arc.run, arc.run_paper, "validation", "allenai/ai2_arc")
        for name in arc.SUBSETS
    },
    **{
        name: TaskSpec(
            ("validation",),
            commonsense.run,
            commonsense.PAPER.get(name),
            "validation" if name in commonsense.PAPER else None,
        )
        for name in commonsense.OLMES
    },
    **{
        name: TaskSpec(
            splits,
            commonsense.run,
            commonsense.PAPER.get(name),
            "validation" if name in commonsense.PAPER else None,
            file_format,
        )
        for name, (splits, _, file_format) in commonsense.STOCK.items()
    },
    "squad": TaskSpec(("validation",), squad.run, squad.run_paper, "validation", "rajpurkar/squad or squad_v2"),
    "translation": TaskSpec(
        ("all", *translation.DIRECTIONS), translation.run, translation.run_paper, "all", "Helsinki-NLP/opus-100"
    ),
    "perplexity": TaskSpec(("val",), perplexity.run, task_file="plain UTF-8 text"),
}


def task_help() -> str:
    """Every registered task for --tasks' help, with its splits where it has several (the first is the default)."""
    return ", ".join(f"{n} ({'|'.join(s.splits)})" if len(s.splits) > 1 else n for n, s in TASKS.items())


@dataclass(frozen=True)
class TaskRun:
    label: str  # as requested, e.g. "arc_easy" or "arc_easy:validation"
    name: str
    split: str
    spec: TaskSpec


def parse_tasks(text: str, protocol: str) -> list[TaskRun]:
    runs = []
    for label in [t.strip() for t in text.split(",") if t.strip()]:
        name, _, split = label.partition(":")
        spec = TASKS.get(name)
        if spec is None:
            raise GrowlmError(f"unknown task {name!r}; tasks: {', '.join(sorted(TASKS))}")
        if spec.runner(protocol) is None:
            offered = sorted(n for n, s in TASKS.items() if s.run_paper)
            raise GrowlmError(
                f"{name} is not part of the paper protocol; with `protocol` paper use {', '.join(offered)}"
            )
        split = split or (spec.paper_split if protocol == "paper" else spec.splits[0])
        if split not in spec.splits:
            raise GrowlmError(f"{name} has no split {split!r}; use one of {', '.join(spec.splits)}")
        if protocol == "paper" and split != spec.paper_split and name != "translation":
            raise GrowlmError(f"the paper protocol evaluates {name} on {spec.paper_split}; drop ':{split}'")
        runs.append(TaskRun(label, name, split, spec))
    if not runs:
        raise GrowlmError(f"no tasks given; tasks: {', '.join(sorted(TASKS))}")
    return runs


def check_task_files(task_files: dict[str, Path], runs: list[TaskRun]) -> None:
    requested = {r.name for r in runs}
    for name in task_files:
        if name not in TASKS or not TASKS[name].task_file:
            takes = ", ".join(f"{n} ({s.task_file})" for n, s in TASKS.items() if s.task_file)
            raise GrowlmError(f"`task_files` {name}=...: {name!r} takes no local file; tasks that do: {takes}")
        if name not in requested:
            raise GrowlmError(f"`task_files` names {name}, which is not among `tasks`; add it or drop the file")


def evaluate(
    model_path: Path, runs: list[TaskRun], settings: EvalSettings, device: str = "cpu", loaded=None
) -> EvalResults:
    """The results of every task run on the model; `loaded`: the folder's (model, tokenizer) already loaded
    (growlm.loading.load_lm), for a caller that evaluates it several times."""
    from growlm.loading import load_lm
    from growlm.model.folder import find_meta

    check_task_files(settings.task_files, runs)
    model, tokenizer = loaded or load_lm(model_path, device)
    results = []
    for run in runs:
        runner = run.spec.runner(settings.protocol)
        result = runner(model, tokenizer, EvalContext(run.name, run.split, settings, model_path))
        results.append(replace(result, label=run.label))
    return EvalResults.of(model_path, find_meta(model_path), settings, results)
