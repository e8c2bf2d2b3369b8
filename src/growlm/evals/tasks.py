"""The task registry and one evaluation of one model.

A task is named NAME or NAME:SPLIT (e.g. arc_easy:validation, translation:en-zh); without a split the first
one listed is used, except under the paper protocol, which uses the split the author evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from growlm.errors import GrowlmError
from growlm.evals import arc, commonsense, mmlu, perplexity, squad, translation
from growlm.evals.results import TaskResult, results_payload
from growlm.evals.settings import EvalSettings

Runner = Callable[..., TaskResult]  # (model, tokenizer, split, settings, model_path) -> TaskResult


@dataclass(frozen=True)
class TaskSpec:
    splits: tuple[str, ...]  # the first is the default
    run: Runner
    run_paper: Runner | None = None
    paper_split: str | None = None  # the split the author evaluated
    task_file: str = ""  # the local format --task-file accepts, if any


def _plain(fn) -> Runner:
    return lambda model, tokenizer, split, settings, model_path: fn(model, tokenizer, split, settings)


def _named(fn, task: str) -> Runner:
    return lambda model, tokenizer, split, settings, model_path: fn(task, model, tokenizer, split, settings)


TASKS: dict[str, TaskSpec] = {
    "mmlu": TaskSpec(("test",), _plain(mmlu.run), _plain(mmlu.run_paper), "test", "cais/mmlu"),
    **{name: TaskSpec(("test", "validation"), _named(arc.run, name), _named(arc.run_paper, name), "validation",
                      "allenai/ai2_arc") for name in arc.SUBSETS},
    **{name: TaskSpec(("validation",), _named(commonsense.run, name),
                      _plain(commonsense.PAPER[name]) if name in commonsense.PAPER else None,
                      "validation" if name in commonsense.PAPER else None) for name in commonsense.VARIANTS},
    "squad": TaskSpec(("validation",), _plain(squad.run), _plain(squad.run_paper), "validation",
                      "rajpurkar/squad or squad_v2"),
    "translation": TaskSpec(("all", *translation.DIRECTIONS), _plain(translation.run),
                            _plain(translation.run_paper), "all", "Helsinki-NLP/opus-100"),
    "perplexity": TaskSpec(("val",), lambda model, tokenizer, split, settings, model_path:
                           perplexity.run(model, tokenizer, model_path, settings), task_file="plain UTF-8 text"),
}


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
        if protocol == "paper" and spec.run_paper is None:
            offered = sorted(n for n, s in TASKS.items() if s.run_paper)
            raise GrowlmError(f"{name} is not part of the paper protocol; with --protocol paper use "
                              f"{', '.join(offered)}")
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
            raise GrowlmError(f"--task-file {name}=...: {name!r} takes no local file; tasks that do: {takes}")
        if name not in requested:
            raise GrowlmError(f"--task-file names {name}, which is not among --tasks; add it or drop the file")


def model_meta(path: Path) -> dict | None:
    meta = path / "growlm.json"
    return json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else None


def evaluate(model_path: Path, runs: list[TaskRun], settings: EvalSettings, device: str = "cpu") -> dict:
    """Results payload (see results.py) of every task run on the model."""
    from growlm.inference import load_lm

    check_task_files(settings.task_files, runs)
    model, tokenizer = load_lm(model_path, device)
    results = []
    for run in runs:
        runner = run.spec.run_paper if settings.protocol == "paper" else run.spec.run
        result = runner(model, tokenizer, run.split, settings, model_path)
        result.task = run.label
        results.append(result)
    return results_payload(model_path, model_meta(model_path), settings, results)
