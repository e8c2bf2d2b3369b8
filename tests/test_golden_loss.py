"""Golden loss curve (torchtitan's habit): the smoke run's per-step training losses on CPU in fp32.

A change that alters training numerics (initialisation order, data order, the loss, the optimizer, the schedule)
moves this curve. Regenerate the asset only for an intended change, and say why in the commit:

    GROWLM_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_loss.py
"""

import json
import os
from pathlib import Path

import pytest

from growlm.cli import main
from growlm.train.metrics import read_metrics
from growlm.train.records import TrainRow

ASSET = Path(__file__).parent / "assets" / "golden_smoke_fp32.json"
CONFIG = Path(__file__).parents[1] / "configs" / "smoke.toml"
SETTINGS = ["train.precision='fp32'", "train.log_every=1", "train.threads=2"]
# Same machine and torch: bit-identical. Other CPUs or BLAS builds reorder float sums a little.
RTOL = 2e-3


def smoke_losses(out: Path) -> list[float]:
    args = ["grow", str(CONFIG), "--out", str(out)]
    for setting in SETTINGS:
        args += ["--set", setting]
    assert main(args) == 0
    return [r.loss for r in read_metrics(out / "metrics.jsonl") if isinstance(r, TrainRow)]


def test_smoke_losses_follow_the_golden_curve(tmp_path):
    losses = smoke_losses(tmp_path / "run")
    if os.environ.get("GROWLM_REGENERATE_GOLDEN"):
        ASSET.write_text(
            json.dumps({"config": "configs/smoke.toml", "set": SETTINGS, "losses": losses}, indent=1) + "\n"
        )
    golden = json.loads(ASSET.read_text())
    assert golden["set"] == SETTINGS
    assert len(losses) == len(golden["losses"]) == 16
    assert losses == pytest.approx(golden["losses"], rel=RTOL)
