"""growlm.train.parallel under torchrun (gloo, CPU, fp32): one process, DDP x 2 and FSDP2 x 2 train the same run.

The run is the tiny config grown to three stages: stage 2 stacks a copy of the top block (growth.init =
"copy_top") on the frozen first block, which then runs without autograd (the frozen prefix); stage 3 puts LoRA
adapters on the two frozen blocks (merged in fp32 at its end). Every comparison is with the same global batch:
per-step losses within 1e-5, exported logits within 1e-5 of their scale, frozen tensors bit-identical,
checkpoints that resume across world sizes, a killed rank that ends the job, and two "nodes" of one process each
meeting through a localhost c10d rendezvous.
"""

import os
import socket
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from growlm.train.metrics import read_metrics
from growlm.train.records import StageStart, TrainRow

pytestmark = pytest.mark.slow

THIRD_STAGE = "\n[[growth.stages]]\nadd_blocks = 1\ntokens = 512\nlora = true\n"
COMMON = ["--set", "train.precision='fp32'", "--set", "train.threads=1", "--set", "growth.init='copy_top'"]
COMMON += ["--set", "growth.budget_factor=1.1"]  # room for adapters beside a new block and the head
TOLERANCE = 1e-5
# A run resumed on another world size trained its first steps with another reduction order: its per-step losses
# still agree within 1e-5, its final logits (after AdamW amplified the rounding, see worst_weight) within 1e-4.
RESUMED = 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher(procs: int) -> list[str]:
    if procs == 1:
        return [sys.executable, "-m", "growlm"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(procs),
        "--standalone",
        "-m",
        "growlm",
    ]


def grow(config, out, procs=1, mode="auto", env=None, resume=False, check=True):
    args = ["grow", "--out", str(out), "--resume"] if resume else ["grow", str(config), "--out", str(out), *COMMON]
    args += ["--set", f"train.parallel='{mode}'"]
    done = subprocess.run(
        launcher(procs) + args, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def losses(run) -> dict[int, float]:
    return {r.progress.step: r.loss for r in read_metrics(run / "metrics.jsonl") if isinstance(r, TrainRow)}


def assert_same_training(a, b, logits_tolerance=TOLERANCE):
    la, lb = losses(a), losses(b)
    assert la.keys() == lb.keys() and len(la) == 12
    worst = max(abs(la[s] - lb[s]) for s in la)
    assert worst < TOLERANCE, f"per-step losses differ by {worst}"
    assert frozen_kept(a) == frozen_kept(b)
    # AdamW's update is about lr x sign(g) where a gradient is near zero, so rounding-level gradient differences
    # can move a weight by a fraction of lr (3e-3): weights are compared loosely, the model's outputs tightly
    assert worst_weight(a, b) < 1e-3
    assert worst_logits(a, b) < logits_tolerance


def frozen_kept(run) -> list[set[str]]:
    """The tensors stages 2 and 3 kept frozen, each checked bit-identical to the previous stage's export (LoRA's
    base weights are the frozen ones: they are merged only after the check)."""
    import hashlib
    import json

    kept = []
    for stage in (2, 3):
        recorded = json.loads((run / f"stages/{stage}/frozen_hashes.json").read_text())
        before = load_file(run / f"stages/{stage - 1}/model/model.safetensors")
        for name, sha in recorded.items():
            plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert hashlib.sha256(before[plain].contiguous().view(torch.uint8).numpy().tobytes()).hexdigest() == sha
        kept.append(set(recorded))
    assert any("layers.1." in name for name in kept[1]) and not any("layers.1." in name for name in kept[0])
    return kept


def worst_weight(a, b) -> float:
    wa, wb = (load_file(r / "stages/3/model/model.safetensors") for r in (a, b))
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def worst_logits(a, b) -> float:
    from transformers import AutoModelForCausalLM

    ids = torch.randint(0, 65536, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        la, lb = (AutoModelForCausalLM.from_pretrained(r / "stages/3/model")(ids).logits for r in (a, b))
    return ((la - lb).abs().max() / la.abs().max().clamp(min=1)).item()  # relative to the logits' scale


@pytest.fixture(scope="module")
def runs(module_tmp, corpus_inputs):
    """The uninterrupted reference runs: one process and FSDP2 x 2."""
    from conftest import TINY_CONFIG

    root = module_tmp("parallel")
    config = root / "tiny.toml"
    config.write_text(TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()}) + THIRD_STAGE)
    one, fsdp = root / "one", root / "fsdp"
    grow(config, one)
    grow(config, fsdp, procs=2, mode="fsdp")
    return config, one, fsdp


def test_fsdp_trains_as_one_process(runs):
    config, one, fsdp = runs
    assert_same_training(one, fsdp)
    starts = [r for r in read_metrics(fsdp / "metrics.jsonl") if isinstance(r, StageStart)]
    assert [(r.parallel, r.world, r.lora_rank > 0) for r in starts] == [("fsdp", 2, False)] * 2 + [("fsdp", 2, True)]
    embedding = load_file(one / "stages/1/model/model.safetensors")["model.embed_tokens.weight"]
    for stage in (1, 2, 3):
        tensors = load_file(fsdp / f"stages/{stage}/model/model.safetensors")
        assert torch.equal(tensors["model.embed_tokens.weight"], embedding)  # the substrate, bit for bit
    first_block = {k: v for k, v in tensors.items() if ".layers.0." in k}
    stage2 = load_file(fsdp / "stages/2/model/model.safetensors")
    assert any(not torch.equal(v, stage2[k]) for k, v in first_block.items())  # the LoRA merge moved block 1


def test_ddp_over_two_nodes_trains_as_one_process(runs, tmp_path):
    """Two torchrun "nodes" of one process each, meeting through a c10d rendezvous on localhost."""
    config, one, _ = runs
    out, endpoint = tmp_path / "nodes", f"127.0.0.1:{free_port()}"
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1"]
    node += ["--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "growlm-test"]
    args = ["-m", "growlm", "grow", str(config), "--out", str(out), *COMMON, "--set", "train.parallel='ddp'"]
    nodes = [
        subprocess.Popen(node + ["--node_rank", str(rank)] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for rank in (0, 1)
    ]
    for p in nodes:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-3000:]
    assert_same_training(one, out)
    assert {r.parallel for r in read_metrics(out / "metrics.jsonl") if isinstance(r, StageStart)} == {"ddp"}


def test_killed_rank_ends_the_job_and_resume_on_one_process_ends_as_one_process(runs, tmp_path):
    """FSDP x 2, rank 1 SIGKILLed in the LoRA stage (after the checkpoint of global step 10); resumed on 1 process."""
    config, one, _ = runs
    out = tmp_path / "killed"
    start = time.monotonic()
    killed = grow(
        config, out, procs=2, mode="fsdp", env={"GROWLM_FAULT": "step:11", "GROWLM_FAULT_RANK": "1"}, check=False
    )
    assert killed.returncode != 0 and time.monotonic() - start < 60  # start, 10 steps, kill, every rank gone
    assert "rank      : 1" in killed.stderr and "SIGKILL" in killed.stderr  # torchrun names the rank that died
    grow(None, out, resume=True)
    assert_same_training(one, out, RESUMED)


def test_one_process_run_resumes_on_two(runs, tmp_path):
    """Killed in stage 2 (after the checkpoint of global step 6, frozen prefix), resumed under FSDP x 2."""
    config, _, fsdp = runs
    out = tmp_path / "grown"
    killed = grow(config, out, env={"GROWLM_FAULT": "step:7"}, check=False)
    assert killed.returncode == -9
    grow(None, out, procs=2, mode="fsdp", resume=True)
    assert_same_training(fsdp, out, RESUMED)


def test_activation_checkpointing_under_fsdp_trains_as_without_it(runs, tmp_path):
    """FSDP x 2 with the trained blocks recomputed (a growth stage over a frozen prefix, then a LoRA stage): the
    same per-step losses as FSDP x 2 without, within 1e-6."""
    config, _, fsdp = runs
    out = tmp_path / "recomputed"
    done = subprocess.run(
        launcher(2)
        + ["grow", str(config), "--out", str(out), *COMMON, "--set", "train.parallel='fsdp'"]
        + ["--set", "train.activation_checkpointing='blocks'"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "activation checkpointing: the trained blocks" in done.stdout
    plain, recomputed = losses(fsdp), losses(out)
    assert plain.keys() == recomputed.keys() and len(plain) == 12
    assert max(abs(plain[s] - recomputed[s]) for s in plain) <= 1e-6
