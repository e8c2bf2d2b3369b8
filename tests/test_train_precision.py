"""growlm.train.recipe.run_precision: the run's precision recorded in its manifest, printed, kept by a resume."""

import json

import growlm.precision as precision
from growlm.cli import main
from growlm.config import load_config
from growlm.precision import Precision
from growlm.train.dist import Dist
from growlm.train.recipe import run_precision
from growlm.train.rundir import RunDir
from test_precision import cpu  # noqa: F401 (a fixture)


def test_the_manifest_records_the_choice_and_a_resume_keeps_it(tiny_config, tmp_path, cpu, monkeypatch, capsys):
    cpu("AVX512+AMX+AVX512_BF16")
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: 2.0)
    run = tmp_path / "run"
    # bf16 is emulated (slow) on a CPU without bf16 units: two steps are enough to record and print the choice, and
    # the MFU reference (ten 1024^3 bf16 matmuls, about 20 s emulated) is not what this test is about
    monkeypatch.setattr("growlm.train.trainer.measured_peak_flops", lambda device, bf16: 1e12)
    short = [
        "--set",
        "growth.stages.0.tokens=128",
        "--set",
        "growth.stages.1.tokens=128",
        "--set",
        "train.eval_batches=1",
    ]
    assert main(["grow", str(tiny_config()), "--out", str(run), *short]) == 0
    assert "precision bf16 (auto: cpu AVX512+AMX+AVX512_BF16, bf16 matmul 2x float32" in capsys.readouterr().out
    recorded = json.loads((run / "manifest.json").read_text())["precision"]
    assert recorded["chosen"] == "bf16" and recorded["setting"] == "auto" and recorded["bf16_speedup"] == 2.0
    assert "cpu" in json.loads((run / "manifest.json").read_text())["machine"]

    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: 0.01)  # resumed on a machine with slow bf16
    kept = run_precision(load_config(run / "config.resolved.toml", []), RunDir(run), Dist(), resume=True)
    assert kept == Precision.from_json(recorded), "a resume continues in the precision the run started in"
    out = capsys.readouterr().out
    assert "recorded when the run started" in out and "warning: train.precision = 'bf16'" in out
