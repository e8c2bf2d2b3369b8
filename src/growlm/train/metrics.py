"""RUN/metrics.jsonl, written by the trainer and read by everything else: one JSON object per line, each a typed
row of growlm.train.records (TrainRow, ValRow, StageStart, StageEnd; "kind" names which). The trackers that
train.loggers names get the same rows' scalars: TensorBoard (RUN/tensorboard) and Weights & Biases (RUN/wandb,
offline unless WANDB_MODE says otherwise; `wandb sync` uploads an offline run later).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_text
from growlm.train.records import MetricRow, row_from_json

TENSORBOARD_SCALARS = ("loss", "val_loss", "lr", "tokens_per_s", "mfu")


def read_metrics(path: Path) -> list[MetricRow]:
    """The typed rows (rows of kinds this version does not know are skipped)."""
    rows = [row_from_json(r, f"{path} line {n}") for n, r in _objects(path)]
    return [r for r in rows if r is not None]


def _objects(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) of every row as written."""
    rows, lines = [], path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            # A run killed mid-write leaves a torn last line; anything earlier is corruption.
            if number == len(lines):
                break
            raise GrowlmError(f"{path} line {number} is not valid JSON; fix or truncate the file") from None
        if not isinstance(row, dict) or "kind" not in row:
            raise GrowlmError(f'{path} line {number}: expected an object with a "kind" field')
        rows.append((number, row))
    return rows


@dataclass(frozen=True)
class WandbRun:
    """What a Weights & Biases run is opened with: the same id on every resume, so its rows continue one run."""

    dir: Path
    id: str
    name: str
    config: dict[str, Any]


class MetricsLog:
    """Appends rows to metrics.jsonl and the trackers in `loggers`; a no-op on every process but the main one."""

    def __init__(
        self,
        path: Path,
        tensorboard: Path,
        enabled: bool,
        loggers: list[str] | tuple[str, ...] = ("tensorboard",),
        wandb: WandbRun | None = None,
    ):
        self.path, self.tensorboard, self.enabled = path, tensorboard, enabled
        self.loggers, self.wandb_run = tuple(loggers), wandb
        self.writer = None
        self.wandb = None
        if enabled and "wandb" in self.loggers:
            self.wandb = _open_wandb(wandb)

    def log(self, record: MetricRow) -> None:
        if not self.enabled:
            return
        row = record.to_json()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        scalars = {f"{row['kind']}/{key}": row[key] for key in TENSORBOARD_SCALARS if row.get(key) is not None}
        if "tensorboard" in self.loggers:
            if self.writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.tensorboard))
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, row["step"])
        if self.wandb is not None and scalars:
            self.wandb.log(scalars, step=row["step"])

    def truncate(self, after_step: int, stage: int | None = None) -> None:
        """Drop rows logged after `after_step` (and, at that step, rows of stages after `stage`), which a resume
        from that step logs again."""
        if self.enabled and self.path.is_file():
            rows = []
            for number, r in _objects(self.path):
                typed = row_from_json(r, f"{self.path} line {number}")
                step, row_stage = (typed.step, typed.stage) if typed else (r.get("step", 0), r.get("stage", 0))
                if step < after_step or (step == after_step and (stage is None or row_stage <= stage)):
                    rows.append(r)
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))  # a kill keeps the old file

    def rows(self) -> list[MetricRow]:
        return read_metrics(self.path) if self.path.is_file() else []

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def _open_wandb(run: WandbRun | None):
    try:
        import wandb
    except ImportError:
        raise GrowlmError(
            "train.loggers names 'wandb' but Weights & Biases is not installed; pip install -e '.[wandb]', "
            "or set train.loggers = ['tensorboard']"
        ) from None
    if run is None:
        raise GrowlmError("train.loggers names 'wandb' but this log has no run to open (a bug, please report it)")
    run.dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "growlm"),
        name=run.name,
        id=run.id,
        resume="allow",
        dir=str(run.dir.parent),
        config=run.config,
        mode=os.environ.get("WANDB_MODE", "offline"),
    )
