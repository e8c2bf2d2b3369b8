"""The CUDA path, checked on a real GPU (benchmarks/gpu_check.sh runs these); skipped where no GPU is visible.

Same properties as the CPU tests, on the device: the training loss equals cross-entropy of the HF logits (bf16
tolerance), LoRA merge keeps the function, identity growth is exact, and a killed run resumes bit-identically
on the same GPU.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from growlm.model.growth import grow
from growlm.model.llama import build_model
from growlm.train.freeze import set_trainable
from growlm.train.lora import add_lora, merge_lora
from growlm.train.step import LossModel

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


class Shape:
    d_model, ff, n_heads, kv_heads, context, rope_theta, rms_norm_eps, init_std = 256, 704, 4, 4, 128, 1e4, 1e-5, 0.02


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(Shape, 2, None).cuda()


@pytest.fixture
def batch():
    return torch.randint(0, 60000, (4, Shape.context + 1), device="cuda")


@pytest.mark.parametrize("bf16,tol", [(False, 1e-4), (True, 3e-2)])
def test_training_loss_is_the_cross_entropy_of_hf_logits(model, batch, bf16, tol):
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        logits = model(batch[:, :-1]).logits.float()
    reference = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
    set_trainable(model, 0, False)
    loss = LossModel(model, 0, 256, bf16, compile=False)(batch)
    loss.backward()
    assert abs(loss.item() - reference.item()) < tol
    assert model.lm_head.weight.grad is not None and torch.isfinite(model.lm_head.weight.grad).all()


def test_identity_growth_is_exact_on_the_gpu(model, batch):
    with torch.no_grad():
        before = model(batch).logits
        grow(model, 2, "identity")
        assert torch.equal(model(batch).logits, before)


def test_lora_merge_keeps_the_function_on_the_gpu(model, batch):
    grow(model, 1, "random")
    set_trainable(model, 2, False)
    peft_model = add_lora(model, 2, rank=4, alpha_ratio=2.0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    with torch.no_grad():
        unmerged = peft_model(input_ids=batch).logits
        merged = merge_lora(peft_model)(batch).logits
    assert (merged - unmerged).abs().max() < 1e-3


def _grow(config, out, *extra):
    return [
        sys.executable,
        "-m",
        "growlm",
        "grow",
        *([str(config)] if config else []),
        "--out",
        str(out),
        "--set",
        "train.device='cuda'",
        *extra,
    ]


def test_resume_after_kill_is_bit_identical_on_the_same_gpu(tiny_config, tmp_path):
    cfg = tiny_config()
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_grow(cfg, full), check=True, capture_output=True)
    proc = subprocess.Popen(
        _grow(cfg, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    latest, deadline = killed / "checkpoints" / "latest", time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "step-00000006":
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run(
        [sys.executable, "-m", "growlm", "grow", "--resume", "--out", str(killed)], check=True, capture_output=True
    )
    a, b = (load_file(run / "stages" / "2" / "model" / "model.safetensors") for run in (full, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    val = [json.loads((run / "stages" / "summary.json").read_text())[-1]["val_loss"] for run in (full, killed)]
    assert val[0] == val[1]
