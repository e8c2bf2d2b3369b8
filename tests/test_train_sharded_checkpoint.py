"""Sharded checkpoints (growlm.train.checkpoint.ShardedSave, torch.distributed.checkpoint) under torchrun (gloo,
CPU, fp32): every process writes its own shard, a checkpoint killed while it is written is never resumed from, a
run resumes on another number of processes (2 -> 3) as the uninterrupted run of that number, and the background
(async) save writes the same files as the synchronous one.

The tiny config with a LoRA third stage, 6 sequences a step (so 1, 2 and 3 processes share it evenly): 3 steps a
stage, a sharded checkpoint at each stage's second step (global steps 2, 5, 8), a whole one at each stage's end.
"""

import json
import os
import subprocess

import pytest
from test_train_parallel import COMMON, RESUMED, THIRD_STAGE, launcher, losses, worst_logits

from conftest import TINY_CONFIG
from growlm.io.hashing import sha256_file

pytestmark = pytest.mark.slow


def grow(config, out, procs, resume=False, env=None, extra=(), check=True):
    args = ["grow", "--out", str(out), "--resume"] if resume else ["grow", str(config), "--out", str(out), *COMMON]
    args += ["--set", "train.parallel='fsdp'", *extra]
    done = subprocess.run(
        launcher(procs) + args, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def shard_files(checkpoint) -> dict[str, str]:
    """The shard files' hashes, and the index's tensor entries (the .metadata file also names the save's own id
    and folder, which differ between any two saves)."""
    from torch.distributed.checkpoint import FileSystemReader

    found = {p.name: sha256_file(p) for p in sorted((checkpoint / "shards").glob("*.distcp"))}
    index = FileSystemReader(checkpoint / "shards").read_metadata()
    return {**found, "index": repr(sorted(index.state_dict_metadata.items()))}


@pytest.fixture(scope="module")
def runs(module_tmp, corpus_inputs):
    root = module_tmp("sharded")
    config = root / "tiny6.toml"
    text = TINY_CONFIG.format(**{k: str(v) for k, v in corpus_inputs.items()}) + THIRD_STAGE
    assert "batch_size = 4" in text
    config.write_text(text.replace("batch_size = 4", "batch_size = 6"))
    two, three = root / "two", root / "three"
    grow(config, two, 2)
    grow(config, three, 3)
    return config, two, three


def test_each_process_writes_its_own_shard(runs):
    _, two, _ = runs
    mids = sorted((two / "checkpoints").glob("step-*[0-9]"))
    assert [p.name for p in mids] == ["step-00000002", "step-00000005", "step-00000008"]
    for ckpt in mids:
        written = {p.name: p.stat().st_size for p in (ckpt / "shards").iterdir() if p.suffix == ".distcp"}
        assert set(written) == {"__0_0.distcp", "__1_0.distcp"}, written
        assert max(written.values()) <= 0.6 * sum(written.values()), written  # nobody wrote the whole model
        recorded = json.loads((ckpt / "state.json").read_text())["sha256"]
        assert {f"shards/{name}" for name in written} | {"shards/.metadata", "rng.pt"} <= set(recorded)
        assert not (ckpt / "model.safetensors").exists() and not (ckpt / "optimizer.pt").exists()


def test_background_save_writes_the_same_files(runs, tmp_path):
    config, two, _ = runs
    out = tmp_path / "async"
    grow(config, out, 2, extra=["--set", "train.async_checkpoint=true"])
    assert losses(out) == losses(two)
    for ckpt in sorted((two / "checkpoints").glob("step-*[0-9]")):
        assert shard_files(out / "checkpoints" / ckpt.name) == shard_files(ckpt), ckpt.name


def test_a_checkpoint_killed_while_it_is_written_is_never_resumed_from(runs, tmp_path):
    """Rank 1 SIGKILLed once it wrote its shard of the second sharded checkpoint (global step 5), before the
    checkpoint was finished: no step-5 checkpoint exists, the resume starts from the one before it (stage 1's end)
    and ends as the uninterrupted run."""
    config, two, _ = runs
    out = tmp_path / "killed"
    killed = grow(config, out, 2, env={"GROWLM_FAULT": "shards:2", "GROWLM_FAULT_RANK": "1"}, check=False)
    assert killed.returncode != 0 and "SIGKILL" in killed.stderr
    assert not (out / "checkpoints" / "step-00000005").exists()
    assert list((out / "checkpoints").glob(".step-00000005*.tmp"))  # its shards were being written
    grow(None, out, 2, resume=True)
    resumed = [json.loads(line) for line in (out / "resumes.jsonl").read_text().splitlines()]
    assert [r["checkpoint"] for r in resumed] == ["step-00000003-stage-end"]
    assert losses(out) == losses(two)  # the same processes, the same steps: bit for bit
    assert not list((out / "checkpoints").glob(".*.tmp"))  # the half-written checkpoint's folder is gone


def test_a_run_of_two_processes_resumes_mid_stage_on_three(runs, tmp_path):
    """Killed in the LoRA stage after its sharded checkpoint of global step 8 (2 processes' shards), resumed on
    3 processes: DCP reshards the model and AdamW state, and the run ends as the uninterrupted 3-process run."""
    config, _, three = runs
    out = tmp_path / "grown"
    killed = grow(config, out, 2, env={"GROWLM_FAULT": "step:9"}, check=False)
    assert killed.returncode != 0
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000008"
    grow(None, out, 3, resume=True)
    resumed = [json.loads(line) for line in (out / "resumes.jsonl").read_text().splitlines()]
    assert [r["checkpoint"] for r in resumed] == ["step-00000008"]
    a, b = losses(three), losses(out)
    assert a.keys() == b.keys() and len(a) == 9
    assert max(abs(a[s] - b[s]) for s in a) < 1e-5
    assert worst_logits(three, out) < RESUMED
