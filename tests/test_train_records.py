"""growlm.train.records: every record round-trips through JSON; files of earlier versions still read."""

import pytest

from growlm.errors import GrowlmError
from growlm.train.metrics import MetricsLog, read_metrics
from growlm.train.records import (
    CheckpointState,
    Progress,
    StageEnd,
    StageStart,
    StageSummary,
    TrainRow,
    ValRow,
    row_from_json,
)

SUMMARY = StageSummary(
    stage=2,
    depth=3,
    trainable_params=10,
    total_params=30,
    tokens=640,
    flops=1.5e9,
    val_loss=3.25,
    add_blocks=1,
    lora_rank=4,
    val_loss_at_start=3.5,
    wall_s=2.0,
    frozen_tensors=9,
)
ROWS = [
    StageStart(2, 3, 5, 10, 30, 4, 100, 2.0e6, 10),
    ValRow(2, 3, Progress(5, 320, 1e9), 3.5, at_stage_start=True),
    TrainRow(2, 3, Progress(6, 384, 1.1e9), 1, 3.4, 1e-3, 900.0, 0.2, 0.5),
    ValRow(2, 3, Progress(6, 384, 1.1e9), 3.3),
    StageEnd(6, SUMMARY),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.KIND)
def test_rows_round_trip(row):
    data = row.to_json()
    assert data["kind"] == row.KIND and data["step"] == row.step and row_from_json(data) == row


def test_summary_and_checkpoint_state_round_trip():
    assert StageSummary.from_json(SUMMARY.to_json()) == SUMMARY
    state = CheckpointState(1, 3, False, Progress(7, 448, 2e9))
    assert CheckpointState.from_json(state.to_json()) == state and state.to_json()["global_step"] == 7


def test_older_rows_read_with_defaults_and_unknown_kinds_and_keys_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"kind": "val", "stage": 1, "depth": 1, "step": 4, "tokens": 8, "flops": 1.0, "val_loss": 5.0}\n'
        '{"kind": "stage_end", "stage": 1, "depth": 1, "step": 4, "tokens": 8, "flops": 1.0, "val_loss": 5.0, '
        '"trainable_params": 1, "total_params": 2, "future_field": 1}\n'
        '{"kind": "profile", "step": 4}\n'
        '{"kind": "train", "stage": 1, "depth'  # torn last line of a killed run
    )
    val, end = read_metrics(path)
    assert val.at_stage_start is False and end.summary.lora_rank == 0 and end.summary.val_loss_at_start is None
    with pytest.raises(GrowlmError, match="missing the field 'val_loss'"):
        row_from_json({"kind": "val", "stage": 1, "depth": 1, "step": 1})


def test_metrics_log_writes_what_read_metrics_returns(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb", enabled=True)
    for row in ROWS:
        log.log(row)
    log.close()
    assert read_metrics(tmp_path / "metrics.jsonl") == ROWS
    log.truncate(5, stage=2)
    assert read_metrics(tmp_path / "metrics.jsonl") == ROWS[:2]
