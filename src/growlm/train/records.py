"""The run's records, typed: what a run writes about itself and every reader reads back.

- `Progress`: how far a run is (global optimizer steps, tokens, FLOPs), kept in checkpoints and on every row.
- `CheckpointState`: RUN/checkpoints/*/state.json.
- `StageSummary`: one finished stage (RUN/stages/summary.json, and growlm.json's "training").
- Metric rows of RUN/metrics.jsonl, one class per "kind": `TrainRow`, `ValRow`, `StageStart`, `StageEnd`.

Each has `to_json()` and `from_json()`; a renamed field is one edit here, and a reader gets an AttributeError at
once instead of a KeyError hours into a study. Files written by earlier growlm versions still read: keys they lack
take their defaults, keys this version does not know are ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from growlm.errors import GrowlmError


class Record:
    """to_json / from_json for a dataclass: its fields in order; unknown keys ignored, missing ones defaulted."""

    KIND: ClassVar[str | None] = None

    def to_json(self) -> dict[str, Any]:
        row = {"kind": self.KIND} if self.KIND else {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Record):
                row.update(value.to_json())
            else:
                row[f.name] = value
        return row

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> Self:
        values = {}
        for f in dataclasses.fields(cls):
            if f.type in ("Progress", Progress):
                values[f.name] = Progress.from_json(data, where)
            elif f.name in data:
                values[f.name] = data[f.name]
            elif f.default is dataclasses.MISSING:
                raise GrowlmError(f"{where or cls.__name__}: missing the field {f.name!r}")
        return cls(**values)


@dataclass(frozen=True)
class Progress(Record):
    step: int = 0  # global optimizer steps done ("global_step" in checkpoints)
    tokens: int = 0
    flops: float = 0.0

    def advanced(self, tokens: int, flops: float) -> "Progress":
        """After one more optimizer step over `tokens` tokens costing `flops`."""
        return Progress(self.step + 1, self.tokens + tokens, self.flops + flops)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> "Progress":
        step = data.get("step", data.get("global_step"))
        if step is None:
            raise GrowlmError(f"{where or 'record'}: missing the field 'step'")
        return cls(int(step), int(data.get("tokens", 0)), float(data.get("flops", 0.0)))


@dataclass(frozen=True)
class CheckpointState(Record):
    """What a checkpoint resumes: stage k (0-based), steps done in it, and whether it finished."""

    stage: int
    stage_step: int
    stage_complete: bool
    progress: Progress

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> "CheckpointState":
        complete = bool(data.get("stage_complete", False))
        return cls(int(data["stage"]), int(data["stage_step"]), complete, Progress.from_json(data, where))

    def to_json(self) -> dict[str, Any]:
        p = self.progress
        return {
            "stage": self.stage,
            "stage_step": self.stage_step,
            "stage_complete": self.stage_complete,
            "global_step": p.step,
            "tokens": p.tokens,
            "flops": p.flops,
        }


@dataclass(frozen=True)
class StageSummary(Record):
    stage: int  # 1-based
    depth: int
    trainable_params: int
    total_params: int
    tokens: int  # cumulative over the run, at the stage's end
    flops: float  # cumulative training FLOPs
    val_loss: float
    add_blocks: int | None = None
    lora_rank: int = 0
    val_loss_at_start: float | None = None  # right after growth, before training (None for stage 1)
    wall_s: float | None = None  # this stage's training wall time
    frozen_tensors: int = 0  # frozen tensors and frozen slices (a widening stage's old rows and columns)
    d_model: int | None = None  # the model's width in the stage (None: written before growlm recorded it)


class AtProgress:
    """step, tokens and flops of a row that carries a Progress."""

    progress: Progress

    @property
    def step(self) -> int:
        return self.progress.step

    @property
    def tokens(self) -> int:
        return self.progress.tokens

    @property
    def flops(self) -> float:
        return self.progress.flops


@dataclass(frozen=True)
class TrainRow(AtProgress, Record):
    KIND: ClassVar[str] = "train"
    stage: int
    depth: int
    progress: Progress
    stage_step: int
    loss: float
    lr: float
    tokens_per_s: float | None = None
    mfu: float | None = None
    wall: float | None = None  # seconds since the stage's (or its resume's) start


@dataclass(frozen=True)
class ValRow(AtProgress, Record):
    KIND: ClassVar[str] = "val"
    stage: int
    depth: int
    progress: Progress
    val_loss: float
    at_stage_start: bool = False  # taken right after a growth, before the stage trained

    def to_json(self) -> dict[str, Any]:
        row = super().to_json()
        if not self.at_stage_start:
            del row["at_stage_start"]
        return row


@dataclass(frozen=True)
class StageStart(Record):
    KIND: ClassVar[str] = "stage_start"
    stage: int
    depth: int
    step: int
    trainable_params: int
    total_params: int
    lora_rank: int = 0
    budget: int | None = None
    flops_per_token: float | None = None
    steps: int | None = None
    parallel: str = "single"  # growlm.train.parallel's mode of this stage
    world: int = 1  # processes
    d_model: int | None = None  # the model's width in the stage


@dataclass(frozen=True)
class StageEnd(Record):
    KIND: ClassVar[str] = "stage_end"
    step: int
    summary: StageSummary

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.KIND, "step": self.step, **self.summary.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> "StageEnd":
        return cls(int(data["step"]), StageSummary.from_json(data, where))

    @property
    def stage(self) -> int:
        return self.summary.stage

    @property
    def depth(self) -> int:
        return self.summary.depth


MetricRow = TrainRow | ValRow | StageStart | StageEnd
ROW_KINDS: dict[str, type[Record]] = {c.KIND: c for c in (TrainRow, ValRow, StageStart, StageEnd)}


def row_from_json(data: dict[str, Any], where: str = "") -> MetricRow | None:
    """The typed row of a metrics.jsonl object; None for a kind this version does not know."""
    kind = ROW_KINDS.get(data.get("kind"))
    return kind.from_json(data, where) if kind is not None else None
