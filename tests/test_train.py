import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from growlm.cli import main


def grow_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "growlm", "grow", *args]


def weights(run: Path, stage: int) -> dict[str, torch.Tensor]:
    return load_file(run / "stages" / str(stage) / "model" / "model.safetensors")


def test_run_layout_export_parity_and_frozen_blocks(tiny_config, tmp_path):
    run = tmp_path / "run"
    assert main(["grow", str(tiny_config()), "--out", str(run)]) == 0
    for name in (
        "config.resolved.toml",
        "manifest.json",
        "metrics.jsonl",
        "checkpoints/latest",
        "stages/1/model/config.json",
        "stages/2/model/model.safetensors",
        "stages/2/model/growlm.json",
    ):
        assert (run / name).exists(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = {r["kind"] for r in rows}
    assert {"train", "val", "stage_start", "stage_end"} <= kinds
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert all(r["tokens_per_s"] > 0 and r["flops"] > 0 for r in train_rows)
    assert [r["step"] for r in train_rows] == sorted(r["step"] for r in train_rows)

    # block 0 and the embedding froze after stage 1: bit-identical in the stage-2 export
    w1, w2 = weights(run, 1), weights(run, 2)
    frozen = [k for k in w1 if k.startswith("model.layers.0.") or k == "model.embed_tokens.weight"]
    assert frozen and all(torch.equal(w1[k], w2[k]) for k in frozen)  # exact: never written after stage 1
    assert not torch.equal(w1["lm_head.weight"], w2["lm_head.weight"])

    # the exported folder is a plain HF model: same logits as growlm's own forward
    model_dir = run / "stages" / "2" / "model"
    hf = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    meta = json.loads((model_dir / "growlm.json").read_text())
    assert meta["depth"] == 2 and meta["substrate"]["kind"] == "visual" and meta["substrate"]["sha256"]
    ids = torch.tensor([tok("To be, or not to be")["input_ids"]])
    from growlm.train.step import LossModel

    batch = torch.cat([ids, ids[:, :1]], dim=1)
    ref = torch.nn.functional.cross_entropy(hf(ids).logits[0], batch[0, 1:])
    assert torch.allclose(LossModel(hf, 0, 8, False)(batch), ref, atol=1e-5)


def test_validation_right_after_growth_measures_the_spike(tiny_config, tmp_path):
    runs = {}
    for init in ("identity", "random"):
        run = runs[init] = tmp_path / init
        assert main(["grow", str(tiny_config()), "--out", str(run), "--set", f"growth.init='{init}'"]) == 0
    for init, run in runs.items():
        summary = json.loads((run / "stages" / "summary.json").read_text())
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        at_start = [r for r in rows if r.get("at_stage_start")]
        assert summary[0]["val_loss_at_start"] is None and [r["stage"] for r in at_start] == [2]
        first_end = next(r for r in rows if r["kind"] == "stage_end")
        assert at_start[0]["step"] == first_end["step"] and rows.index(at_start[0]) > rows.index(first_end)
        assert summary[1]["val_loss_at_start"] == at_start[0]["val_loss"]
        # an identity block changes nothing: the grown model starts exactly where stage 1 ended
        same = summary[1]["val_loss_at_start"] == pytest.approx(summary[0]["val_loss"], abs=1e-5)
        assert same == (init == "identity")


def test_refuses_existing_run_and_bad_config(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("precious")
    assert main(["grow", str(tiny_config()), "--out", str(run)]) == 2
    assert "--force" in capsys.readouterr().err and (run / "keep.txt").read_text() == "precious"
    assert main(["grow", str(tiny_config()), "--out", str(tmp_path / "r2"), "--set", "train.lr=-1"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert main(["grow", str(tiny_config()), "--out", str(tmp_path / "r3"), "--set", "model.depth=3"]) == 2
    assert "unknown key 'model.depth'" in capsys.readouterr().err


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_config, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config()
    out = subprocess.run(
        grow_cmd(
            str(cfg),
            "--out",
            str(run),
            "--set",
            "train.lr=1e6",
            "--set",
            "train.grad_clip=0.0",
            "--set",
            "train.precision='fp32'",
        ),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 3, out.stderr[-2000:]
    assert "loss became" in out.stderr and "step" in out.stderr
    assert not (run / "stages" / "2").exists()


def test_resume_after_kill_is_bit_identical(tiny_config, tmp_path):
    cfg = tiny_config()
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(grow_cmd(str(cfg), "--out", str(full)), check=True, capture_output=True)

    # SIGKILL in the 7th optimizer step (mid stage 2, after the step-6 checkpoint): a real kill at a fixed moment,
    # not a race between a polling test and a training process.
    env = {**os.environ, "GROWLM_FAULT": "step:7"}
    out = subprocess.run(grow_cmd(str(cfg), "--out", str(killed)), env=env, capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert (killed / "checkpoints" / "latest").read_text().strip().startswith("step-00000006")
    assert not (killed / "stages" / "2").exists(), "killed before stage 2 ended"
    subprocess.run(grow_cmd("--resume", "--out", str(killed)), check=True, capture_output=True)

    summaries = [json.loads((run / "stages" / "summary.json").read_text()) for run in (full, killed)]
    assert summaries[0][1]["val_loss_at_start"] == summaries[1][1]["val_loss_at_start"] is not None
    a, b = weights(full, 2), weights(killed, 2)
    # Exact: deterministic CPU training, same config, threads and precision (the resume keeps the recorded one).
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert steps == sorted(set(steps)), "no step is logged twice after resuming"


def test_resume_refuses_changed_inputs(tiny_config, tmp_path, corpus_inputs, capsys):
    run = tmp_path / "run"
    assert main(["grow", str(tiny_config()), "--out", str(run), "--set", "growth.stages.1.tokens=128"]) == 0
    other = tmp_path / "tok2"
    from growlm.tokenizer import default_tokenizer

    default_tokenizer().save(other)
    text = (run / "config.resolved.toml").read_text().replace(str(corpus_inputs["tokenizer"]), str(other))
    (run / "config.resolved.toml").write_text(text)
    assert main(["grow", "--resume", "--out", str(run)]) == 2
    assert "tokenizer" in capsys.readouterr().err


def test_old_blocks_train_at_their_fraction_of_the_learning_rate(tiny_config, tmp_path):
    """One stage-2 step with old_blocks_lr_scale = 0.25 moves the stage-1 block by a quarter of what
    train_old_blocks (the full rate) moves it, from the same gradients; everything else moves the same."""
    runs = {}
    for name, setting in (
        ("scaled", "growth.stages.1.old_blocks_lr_scale=0.25"),
        ("full", "growth.stages.1.train_old_blocks=true"),
    ):
        runs[name] = tmp_path / name
        assert (
            main(
                [
                    "grow",
                    str(tiny_config()),
                    "--out",
                    str(runs[name]),
                    "--set",
                    setting,
                    "--set",
                    "growth.stages.1.tokens=128",
                ]
            )
            == 0
        )
    w1 = weights(runs["full"], 1)
    # Exact: same process, same config for stage 1, deterministic CPU training.
    assert all(torch.equal(w1[k], v) for k, v in weights(runs["scaled"], 1).items()), "same stage 1"
    scaled, full = weights(runs["scaled"], 2), weights(runs["full"], 2)
    old = [k for k in w1 if k.startswith("model.layers.0.")]
    for k in old:
        moved = full[k] - w1[k]
        assert moved.abs().max() > 0
        torch.testing.assert_close(scaled[k] - w1[k], 0.25 * moved, rtol=1e-3, atol=1e-8)
    # Exact: one step from the same state and gradients; AdamW's per-element arithmetic is the same in any group.
    assert all(torch.equal(scaled[k], full[k]) for k in full if k not in old)


def test_old_blocks_are_trained_one_way_only(tiny_config, tmp_path, capsys):
    for extra, said in (
        ("growth.stages.1.train_old_blocks=true", "not both"),
        ("growth.stages.1.lora=true", "none is frozen"),
    ):
        code = main(
            [
                "grow",
                str(tiny_config()),
                "--out",
                str(tmp_path / "run"),
                "--set",
                "growth.stages.1.old_blocks_lr_scale=0.5",
                "--set",
                extra,
            ]
        )
        assert code == 2 and said in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_reading_the_loss_only_when_logging_trains_the_same(tiny_config, tmp_path, monkeypatch):
    """On CUDA the loss reaches the host only at logging, validation and checkpoint steps (a read per step would
    stall the kernel queue); forced here on CPU, the run is the same and divergence is still caught. The lazy run
    also logs to Weights & Biases (offline, under the run's id)."""
    from growlm.train.recipe import grow
    from growlm.train.trainer import Trainer, TrainingDiverged

    reads = []
    read = Trainer._read_losses
    monkeypatch.setattr(
        Trainer, "_read_losses", lambda self, pending, k: reads.append(len(pending)) or read(self, pending, k)
    )
    quiet = ["train.precision='fp32'", "train.log_every=4", "train.eval_every=4", "train.checkpoint_every=4"]
    grow(tiny_config(), tmp_path / "eager", quiet)
    eager_reads, reads[:] = list(reads), []
    monkeypatch.setattr(Trainer, "read_every_step", False)
    monkeypatch.delenv("WANDB_MODE", raising=False)  # growlm's default: offline, nothing sent
    monkeypatch.setenv("WANDB_SILENT", "true")
    grow(tiny_config(), tmp_path / "lazy", [*quiet, "train.loggers=['tensorboard', 'wandb']"])
    assert eager_reads == [1] * 8 and reads == [4, 4]  # 4 steps a stage, read once at its end
    a, b = weights(tmp_path / "eager", 2), weights(tmp_path / "lazy", 2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    run_id = json.loads((tmp_path / "lazy" / "manifest.json").read_text())["run_id"]
    (tracked,) = (tmp_path / "lazy" / "wandb").glob(f"offline-run-*-{run_id}*")
    assert b"val/val_loss" in next(tracked.glob("*.wandb")).read_bytes()
    with pytest.raises(TrainingDiverged, match=r"loss became nan at stage 1 step \d"):
        grow(tiny_config(), tmp_path / "nan", [*quiet, "train.lr=1e6", "train.grad_clip=0.0"])
