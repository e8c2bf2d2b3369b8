"""growlm.train.metrics: the trackers of train.loggers get the rows metrics.jsonl gets, from the main process."""

import pytest

from growlm.train.metrics import MetricsLog, WandbRun
from growlm.train.records import Progress, TrainRow


def test_weights_and_biases_logs_offline_and_a_resume_continues_its_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # growlm's default: offline, nothing sent
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = WandbRun(tmp_path / "wandb", "0123456789abcdef", "tiny", {"train": {"lr": 0.003}})
    for step in (1, 2):  # the run, then its resume
        log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb", True, ["wandb"], run)
        log.log(TrainRow(1, 1, Progress(step, 64 * step, 1e6 * step), step, 4.5 - step, 1e-3))
        log.close()
    folders = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all("-0123456789abcdef" in f.name for f in folders)  # "-1" added within a second
    assert all(b"train/loss" in next(f.glob("*.wandb")).read_bytes() for f in folders)
    assert not (tmp_path / "tb").exists()  # not among the loggers
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_other_processes_open_no_tracker(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb", False, ["tensorboard", "wandb"], None)
    log.log(TrainRow(1, 1, Progress(1), 1, 4.0, 1e-3))
    log.close()
    assert not (tmp_path / "metrics.jsonl").exists() and log.wandb is None
