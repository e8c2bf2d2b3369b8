"""Evaluation results, typed: what `growlm eval` writes (eval-PROTOCOL.json) and every reader reads back.

Results JSON (format "growlm-eval-v1"):
- "protocol" and "protocol_label"; "model": path and its growlm.json; "settings"; "growlm_version".
- "scores": one row per (task, metric): value, ci95 [low, high] (percentile bootstrap over items, fixed seed),
  n (items scored), chance (what guessing scores; null where no such level exists), split, shots, protocol,
  truncated (share of the scored items whose prompt was cut from the left to fit the window), skipped (items
  left out because they cannot be scored in the window: an answer longer than the window, or a prompt that does
  not fit before the generation cap) and majority (multiple choice: the accuracy of always giving the most
  frequent gold answer, e.g. always "no" on BoolQ; null elsewhere).
- "tasks": per task "info" (data source, prompt format, scoring rule) and "items": one record per item with
  everything needed to recompute its score (exact strings scored, log-likelihoods and byte lengths, or prompt,
  output and references; each task family's runner defines its records, PerplexityItem types the perplexity ones).
- "study_model_sha256", in the studies' results files only: the hash of the model scored.

- `Score`: one row of "scores".
- `TaskResult`: one requested task: its label, its scores, its item records and info.
- `PerplexityItem`: one item record of the perplexity task.
- `EvalResults`: one results file.

Each has `to_json()` and `from_json()`; to_json() of a loaded file gives the file back. Files written by earlier
growlm versions still read: keys they lack take their defaults, keys this version does not know are ignored; a
missing required key is a one-line GrowlmError naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growlm import __version__
from growlm.errors import GrowlmError
from growlm.evals.settings import PROTOCOL_LABELS, EvalSettings
from growlm.io.atomic import known_fields

FORMAT = "growlm-eval-v1"


@dataclass(frozen=True)
class Score:
    task: str  # what was scored: the task ("arc_easy") or a part of it ("mmlu/anatomy", "translation/en-ru")
    metric: str
    value: float
    ci95: tuple[float, float]
    n: int  # items scored
    chance: float | None  # what guessing scores; None where no such level exists
    split: str
    shots: int
    protocol: str
    truncated: float = 0.0  # share of scored items whose prompt was cut
    skipped: int = 0  # items that could not be scored in the window
    majority: float | None = None  # always the most frequent gold answer (multiple choice)

    def to_json(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        row["ci95"] = list(self.ci95)
        return row

    @classmethod
    def from_json(cls, data: Any, where: str = "score") -> "Score":
        values = known_fields(cls, data, where)
        ci95 = values["ci95"]
        if not isinstance(ci95, (list, tuple)) or len(ci95) != 2:
            raise GrowlmError(f"{where}: ci95 must be [low, high], got {ci95!r}")
        return cls(**{**values, "ci95": tuple(ci95)})


@dataclass(frozen=True)
class PerplexityItem:
    id: str  # "perplexity/<text>#<k>": document k of that text
    nll: float  # summed over the document's tokens, nats
    tokens: int
    bytes: int  # UTF-8

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "item") -> "PerplexityItem":
        return cls(**known_fields(cls, data, where))


@dataclass(frozen=True)
class TaskResult:
    """One task's result. A runner names it after the registry entry; evaluate() relabels it as requested."""

    label: str  # as requested, e.g. "arc_easy" or "arc_easy:validation"
    scores: tuple[Score, ...]
    items: tuple[dict[str, Any], ...]  # one record per item, as the task's runner writes them
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "scores", tuple(self.scores))
        object.__setattr__(self, "items", tuple(self.items))

    @property
    def task(self) -> str:
        """The registry name ("arc_easy" of "arc_easy:validation")."""
        return self.label.partition(":")[0]

    @property
    def split(self) -> str | None:
        """The split the label names, else the one all its scores share; None where they differ (translation
        scores each direction under its own)."""
        named = self.label.partition(":")[2]
        splits = {s.split for s in self.scores}
        return named or (splits.pop() if len(splits) == 1 else None)

    def perplexity_items(self) -> list[PerplexityItem]:
        return [PerplexityItem.from_json(r, f"{self.label} item {k}") for k, r in enumerate(self.items)]

    def to_json(self) -> dict[str, Any]:
        return {"info": self.info, "items": list(self.items)}

    @classmethod
    def from_json(cls, label: str, data: Any, scores: list[Score], where: str = "task") -> "TaskResult":
        if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
            raise GrowlmError(f"{where}: expected an object with info and items")
        return cls(label, tuple(scores), tuple(data.get("items", [])), data.get("info") or {})


@dataclass(frozen=True)
class EvalResults:
    protocol: str
    protocol_label: str
    growlm_version: str
    model_path: str
    model_meta: dict[str, Any] | None  # the model folder's growlm.json (None where it has none)
    settings: EvalSettings
    tasks: tuple[TaskResult, ...]
    study_model_sha256: str | None = None  # the studies' results files: the hash of the model scored

    @classmethod
    def of(
        cls, model_path: Path, model_meta: dict | None, settings: EvalSettings, tasks: list[TaskResult]
    ) -> "EvalResults":
        """The results of one evaluation by this growlm version."""
        label = PROTOCOL_LABELS[settings.protocol]
        return cls(settings.protocol, label, __version__, str(model_path), model_meta, settings, tuple(tasks))

    @property
    def scores(self) -> tuple[Score, ...]:
        return tuple(s for t in self.tasks for s in t.scores)

    def task(self, label: str) -> TaskResult:
        found = [t for t in self.tasks if t.label == label]
        if not found:
            raise GrowlmError(f"no task {label!r} in these results; they hold {', '.join(t.label for t in self.tasks)}")
        return found[0]

    def to_json(self) -> dict[str, Any]:
        data = {
            "format": FORMAT,
            "protocol": self.protocol,
            "protocol_label": self.protocol_label,
            "growlm_version": self.growlm_version,
            "model": {"path": self.model_path, "growlm": self.model_meta},
            "settings": self.settings.to_json(),
            "scores": [s.to_json() for s in self.scores],
            "tasks": {t.label: t.to_json() for t in self.tasks},
        }
        if self.study_model_sha256 is not None:
            data["study_model_sha256"] = self.study_model_sha256
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "results") -> "EvalResults":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise GrowlmError(f"{where}: not a {FORMAT!r} results file (format {found!r})")
        for key in ("protocol", "protocol_label", "growlm_version", "model", "settings", "scores", "tasks"):
            if key not in data:
                raise GrowlmError(f"{where}: missing the field {key!r}")
        model, tasks, rows = data["model"], data["tasks"], data["scores"]
        if not isinstance(model, dict) or "path" not in model:
            raise GrowlmError(f"{where}: model must be an object with a path")
        if not isinstance(tasks, dict) or not isinstance(rows, list):
            raise GrowlmError(f"{where}: scores must be a list and tasks an object")
        scores = [Score.from_json(s, f"{where} score {i}") for i, s in enumerate(rows)]
        groups = group_scores(scores, list(tasks), where)
        return cls(
            data["protocol"],
            data["protocol_label"],
            data["growlm_version"],
            model["path"],
            model.get("growlm"),
            EvalSettings.from_json(data["settings"], f"{where} settings"),
            tuple(TaskResult.from_json(label, tasks[label], group, f"{where} task {label}") for label, group in groups),
            data.get("study_model_sha256"),
        )


def group_scores(scores: list[Score], labels: list[str], where: str) -> list[tuple[str, list[Score]]]:
    """The scores of a results file back under the tasks that made them, in the order they were written.

    A task's scores are written together and named after it ("mmlu", "mmlu/anatomy"); a run of rows ends where
    the name changes or a (task, metric) repeats. A run goes to the unclaimed label of that name, the one naming
    the run's split first. Labels without scores follow, in the file's order."""
    runs: list[list[Score]] = []
    for s in scores:
        last = runs[-1] if runs else []
        if last and _name(last[0]) == _name(s) and all((r.task, r.metric) != (s.task, s.metric) for r in last):
            last.append(s)
        else:
            runs.append([s])
    out: dict[str, list[Score]] = {}
    for run in runs:
        named = [label for label in labels if label.partition(":")[0] == _name(run[0])]
        if not named:
            raise GrowlmError(f"{where}: scores of {run[0].task!r} belong to none of the tasks {labels}")
        free = [label for label in named if label not in out] or named
        label = next((lb for lb in free if lb.partition(":")[2] == run[0].split), free[0])
        out.setdefault(label, []).extend(run)
    return [*out.items(), *((label, []) for label in labels if label not in out)]


def _name(score: Score) -> str:
    return score.task.partition("/")[0]


def read_results(path: str | Path) -> EvalResults:
    """A results file `growlm eval` (or a study) wrote."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GrowlmError(f"{path} is not valid JSON ({err}); evaluate the model again") from None
    except FileNotFoundError:
        raise GrowlmError(f"{path}: no such results file; evaluate the model with `growlm eval`") from None
    return EvalResults.from_json(data, str(path))
