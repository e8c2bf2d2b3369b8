"""What one evaluation run was asked to do (EvalSettings, recorded in its results JSON) and what one task runner is
given (EvalContext)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from growlm.errors import GrowlmError
from growlm.evals.stats import RESAMPLES, SEED

PROTOCOLS = ("harness", "paper")
PROTOCOL_LABELS = {
    "harness": "harness protocol (log-likelihood scoring, lm-evaluation-harness conventions)",
    "paper": "paper protocol (the author's generation-based scoring, reproduced for comparison)",
}


@dataclass(frozen=True)
class EvalSettings:
    shots: int = 0
    limit: int | None = None  # first N items (MMLU: per subject)
    protocol: str = "harness"
    batch_tokens: int = 2048  # tokens per forward pass (bounds memory: logits are tokens x vocabulary floats)
    max_batch: int = 64
    max_new_tokens: int | None = None  # None: each generation task's fixed default
    seed: int = SEED  # bootstrap resampling and the paper protocol's sampling and item draws
    resamples: int = RESAMPLES
    paper_runs: int = 10
    paper_length_leak: bool = False
    task_files: dict[str, Path] = field(default_factory=dict)
    shards: Path | None = None
    progress: bool = True

    def __post_init__(self):
        if self.shots < 0:
            raise GrowlmError(f"`shots` must be 0 or more, got {self.shots}")
        if self.shots and self.protocol == "paper":
            raise GrowlmError("the paper protocol is zero-shot, as the author ran it; drop `shots`")
        if self.paper_length_leak and self.protocol != "paper":
            raise GrowlmError("`paper_length_leak` only applies to `protocol` paper")

    def to_json(self) -> dict:
        data = asdict(self)
        data["task_files"] = {k: str(v) for k, v in self.task_files.items()}
        data["shards"] = str(self.shards) if self.shards else None
        del data["progress"]
        return data

    @classmethod
    def from_json(cls, data: dict, where: str = "settings") -> "EvalSettings":
        """The settings a results file records (to_json's); keys this version does not know are ignored."""
        if not isinstance(data, dict):
            raise GrowlmError(f"{where}: expected a JSON object, got {type(data).__name__}")
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "progress"}
        files = values.get("task_files") or {}
        if not isinstance(files, dict):
            raise GrowlmError(f"{where}: task_files must map task names to paths")
        values["task_files"] = {k: Path(v) for k, v in files.items()}
        values["shards"] = Path(values["shards"]) if values.get("shards") else None
        try:
            return cls(**values)
        except GrowlmError as err:
            raise GrowlmError(f"{where}: {err}") from None
        except TypeError as err:
            raise GrowlmError(f"{where}: a setting of the wrong type ({err})") from None

    def first(self, items: list) -> list:
        return items if self.limit is None else items[: self.limit]

    def task_source(self, task: str, default: str) -> str:
        """Where a task's items come from, for its info: the --task-file given for it, else `default`."""
        return str(self.task_files.get(task) or default)


@dataclass(frozen=True)
class EvalContext:
    """The one argument, besides model and tokenizer, of every task runner (see tasks.py)."""

    task: str  # the registry name, e.g. "arc_easy"; scores are named after it
    split: str  # checked against the task's splits
    settings: EvalSettings
    model_path: Path  # the model folder being evaluated
