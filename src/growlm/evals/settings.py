"""What one evaluation run was asked to do (EvalSettings, recorded in its results JSON) and what one task runner is
given (EvalContext)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

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

    def to_json(self) -> dict:
        data = asdict(self)
        data["task_files"] = {k: str(v) for k, v in self.task_files.items()}
        data["shards"] = str(self.shards) if self.shards else None
        del data["progress"]
        return data

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
