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
  output and references), typed per task family and protocol (item_type).
- "study_model_sha256", in the studies' results files only: the hash of the model scored.

- `Score`: one row of "scores".
- `TaskResult`: one requested task: its label, its scores, its item records and info.
- Item records, one per item a runner keeps: `ChoiceItem` (multiple choice: mmlu, arc, hellaswag, piqa, sciq,
  csqa, boolq), `SquadItem`, `TranslationItem`, `PerplexityItem`; under the paper protocol, with outputs sampled
  over runs, `SampledChoiceItem`, `SampledSquadItem`, `SampledTranslationItem`. A record's JSON is its fields in
  order, less those it lacks (None: the group of a task without groups; the reason of an item that was scored;
  the scores of a skipped one).
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
from typing import Any, ClassVar, Self

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


class _Item:
    """An item record: written as its fields in order, less those that are None; read back with lists as tuples."""

    SCORED: ClassVar[tuple[str, ...]] = ()  # fields an item must have unless it was skipped

    def to_json(self) -> dict[str, Any]:
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values if v is not None}

    @classmethod
    def from_json(cls, data: Any, where: str = "item") -> Self:
        values = known_fields(cls, data, where)
        if not values.get("skipped"):
            for name in cls.SCORED:
                if values.get(name) is None:
                    raise GrowlmError(f"{where}: missing the field {name!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class PerplexityItem(_Item):
    id: str  # "perplexity/<text>#<k>": document k of that text
    nll: float  # summed over the document's tokens, nats
    tokens: int
    bytes: int  # UTF-8


@dataclass(frozen=True, kw_only=True)
class ChoiceItem(_Item):
    """Multiple choice, harness protocol (choice.py). An item whose answer does not fit in the window is skipped,
    with its reason, and has no scores."""

    SCORED = tuple("loglikelihoods chars tokens context_tokens truncated_tokens truncated pred pred_norm".split())
    SCORED += ("correct", "correct_norm")

    id: str
    group: str | None = None  # the subset also reported on its own (MMLU subject)
    context: str  # the prompt, few-shot examples included
    continuations: tuple[str, ...]  # exactly as scored: delimiter + choice
    gold: int  # index into continuations
    skipped: bool
    reason: str | None = None  # why it was skipped
    loglikelihoods: tuple[float, ...] | None = None  # summed over each continuation's tokens
    chars: tuple[int, ...] | None = None  # characters of each choice without the delimiter (acc_norm divides by)
    tokens: tuple[int, ...] | None = None  # tokens of each continuation
    context_tokens: tuple[int, ...] | None = None  # tokens of the context kept before each continuation
    truncated_tokens: tuple[int, ...] | None = None  # context tokens cut from the left, per continuation
    truncated: bool | None = None  # some context was cut
    pred: int | None = None
    pred_norm: int | None = None
    correct: bool | None = None
    correct_norm: bool | None = None


@dataclass(frozen=True, kw_only=True)
class SampledChoiceItem(_Item):
    """Multiple choice, paper protocol (paper_protocol.py): the output of each run, judged by its first letter."""

    id: str
    group: str | None = None
    prompt: str
    gold: str  # the gold letter (BoolQ: T/F)
    outputs: tuple[str, ...]  # one per run
    correct: tuple[bool, ...]  # one per run
    score: float  # share of runs correct


@dataclass(frozen=True, kw_only=True)
class SquadItem(_Item):
    """SQuAD, harness protocol (squad.py): greedy output scored against the references. An item whose prompt does not
    fit before the generation cap is skipped, with its reason, and has no output."""

    SCORED = ("output", "prediction", "em", "f1", "new_tokens", "truncated_tokens")

    id: str
    prompt: str
    output: str | None = None  # as generated, cut before the stop string
    prediction: str | None = None  # the output stripped: what is scored
    references: tuple[str, ...]  # empty: no answer (v2)
    has_answer: bool
    skipped: bool
    reason: str | None = None
    em: float | None = None
    f1: float | None = None
    new_tokens: int | None = None
    truncated_tokens: int | None = None


@dataclass(frozen=True, kw_only=True)
class SampledSquadItem(_Item):
    """SQuAD, paper protocol (squad.py): the output of each run, matched by substring."""

    id: str
    prompt: str
    reference: str
    new_tokens: int  # the generation cap
    outputs: tuple[str, ...]
    match: tuple[bool, ...]
    score: float


@dataclass(frozen=True, kw_only=True)
class TranslationItem(_Item):
    """Translation, harness protocol (translation.py): greedy output and its BLEU and chrF sufficient statistics."""

    id: str
    direction: str  # e.g. "en-ru"
    source: str
    prompt: str
    output: str
    hypothesis: str  # the output stripped: what is scored
    references: tuple[str, ...]
    bleu_stats: tuple[int, ...]
    chrf_stats: tuple[int, ...]
    new_tokens: int
    truncated_tokens: int


@dataclass(frozen=True, kw_only=True)
class SampledTranslationItem(_Item):
    """Translation, paper protocol (translation.py): the output of each run and its sentence BLEU."""

    id: str
    direction: str
    prompt: str
    reference: str
    new_tokens: int  # the generation cap
    outputs: tuple[str, ...]
    sentence_bleu: tuple[float, ...]
    score: float


ItemRecord = (
    ChoiceItem
    | SampledChoiceItem
    | SquadItem
    | SampledSquadItem
    | TranslationItem
    | SampledTranslationItem
    | PerplexityItem
)
_NOT_CHOICE: dict[str, tuple[type, type]] = {  # task -> its records (harness, paper); every other task: choice
    "squad": (SquadItem, SampledSquadItem),
    "translation": (TranslationItem, SampledTranslationItem),
    "perplexity": (PerplexityItem, PerplexityItem),
}


def item_type(task: str, protocol: str) -> type:
    """The record class of the items of `task` (a registry name) under `protocol`."""
    harness, paper = _NOT_CHOICE.get(task, (ChoiceItem, SampledChoiceItem))
    return paper if protocol == "paper" else harness


@dataclass(frozen=True)
class TaskResult:
    """One task's result. A runner names it after the registry entry; evaluate() relabels it as requested."""

    label: str  # as requested, e.g. "arc_easy" or "arc_easy:validation"
    scores: tuple[Score, ...]
    items: tuple[ItemRecord, ...]  # one record per item, of the task's item_type
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "scores", tuple(self.scores))
        object.__setattr__(self, "items", tuple(self.items))
        if not all(isinstance(i, _Item) for i in self.items):
            raise TypeError(f"{self.label}: items must be item records (growlm.evals.records), not JSON objects")

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
        return [i for i in self.items if isinstance(i, PerplexityItem)]

    def to_json(self) -> dict[str, Any]:
        return {"info": self.info, "items": [i.to_json() for i in self.items]}

    @classmethod
    def from_json(
        cls, label: str, data: Any, scores: list[Score], where: str = "task", protocol: str = "harness"
    ) -> "TaskResult":
        """One task of a results file; `protocol`, the file's, picks the type of its items with the task name."""
        if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
            raise GrowlmError(f"{where}: expected an object with info and items")
        kind = item_type(label.partition(":")[0], protocol)
        items = [kind.from_json(r, f"{where} item {k}") for k, r in enumerate(data.get("items", []))]
        return cls(label, tuple(scores), tuple(items), data.get("info") or {})


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
            tuple(
                TaskResult.from_json(label, tasks[label], group, f"{where} task {label}", data["protocol"])
                for label, group in groups
            ),
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
