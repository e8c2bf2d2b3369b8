"""RUN/metrics.jsonl, written by the trainer and read by everything else (one JSON object per line).

Rows: {"kind": "train", "stage", "depth", "step" (global), "stage_step", "loss", "lr", "tokens" (cumulative),
"flops" (cumulative), "tokens_per_s", "mfu", "wall"}; {"kind": "val", "stage", "depth", "step", "tokens", "flops",
"val_loss"} plus "at_stage_start": true on the one taken right after a growth; {"kind": "stage_start" |
"stage_end", "stage", "depth", "step", "trainable_params", "total_params", ...}. TensorBoard gets the scalars too.
"""

from __future__ import annotations

import json
from pathlib import Path

from growlm.errors import GrowlmError
from growlm.io import atomic_write_text

TENSORBOARD_SCALARS = ("loss", "val_loss", "lr", "tokens_per_s", "mfu")


def read_metrics(path: Path) -> list[dict]:
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
        rows.append(row)
    return rows


class MetricsLog:
    """Appends rows to metrics.jsonl and TensorBoard; a no-op on every process but the main one."""

    def __init__(self, path: Path, tensorboard: Path, enabled: bool):
        self.path, self.tensorboard, self.enabled = path, tensorboard, enabled
        self.writer = None

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.tensorboard))
        for key in TENSORBOARD_SCALARS:
            if row.get(key) is not None:
                self.writer.add_scalar(f"{row['kind']}/{key}", row[key], row["step"])

    def truncate(self, after_step: int, stage: int | None = None) -> None:
        """Drop rows logged after `after_step` (and, at that step, rows of stages after `stage`), which a resume
        from that step logs again."""
        if self.enabled and self.path.is_file():
            rows = [
                r
                for r in read_metrics(self.path)
                if r["step"] < after_step or (r["step"] == after_step and (stage is None or r.get("stage", 0) <= stage))
            ]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))  # a kill keeps the old file

    def rows(self) -> list[dict]:
        return read_metrics(self.path) if self.path.is_file() else []

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
