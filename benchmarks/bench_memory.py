"""Memory at the moments between steps, per process: one process vs FSDP2 x 2 (gloo, CPU), and activation
checkpointing's peak against without it.

A model where weights dominate (default d_model 1024, 8 blocks, V = 65,536: about 240M parameters, every block and
the LM head training, AdamW) trains one step (so AdamW has its state), then each process measures:
- checkpoint, sharded (what growlm writes now): the bytes of the tensors this process hands to DCP
  (growlm.train.checkpoint.stage_state: its own shards) and its resident-set growth while ShardedSave writes them;
- checkpoint, gathered (growlm before DCP, the reference): the bytes of the whole model and AdamW state that
  get_model_state_dict / get_optimizer_state_dict(full_state_dict=True) materialise on every process, and the
  resident-set growth while they do;
- stage boundary: the bytes of the whole plain model every process gathers at a stage's end (growlm.train.parallel
  .model_state, what the growth operator, the LoRA merge and the export read today).
Then, in fresh processes, one training step's resident-set growth with and without activation checkpointing
(train.activation_checkpointing = "blocks"), same model and batch.

Resident-set growth: the peak of /proc/self/statm sampled every millisecond in a thread during the operation, minus
the resident set just before it. What it cannot show: GPU memory (there the gather lands on the device), and a
machine's page cache (DCP's writes go through it).

    .venv/bin/python -m benchmarks.bench_memory [--d-model 1024] [--blocks 8] [--context 256] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakGrowth:
    """Peak resident-set growth over a `with` block, sampled every millisecond."""

    def __enter__(self):
        self.start, self.peak, self.running = rss(), rss(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss())
        self.growth = self.peak - self.start


def tensor_bytes(tree) -> int:
    import torch

    if isinstance(tree, dict):
        return sum(tensor_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(tensor_bytes(v) for v in tree)
    if torch.is_tensor(tree):
        local = tree.to_local() if hasattr(tree, "to_local") else tree
        return local.numel() * local.element_size()
    return 0


def build(args, d, recompute: bool):
    import torch

    from growlm.config import validate_config
    from growlm.model.llama import build_model
    from growlm.train.parallel import Parallel
    from growlm.train.plan import Plan
    from growlm.train.stage import Stage, prepare

    cfg = validate_config(
        {
            "model": {"d_model": args.d_model, "n_heads": 8, "context": args.context},
            "growth": {"stages": [{"add_blocks": args.blocks}]},
            "train": {"batch_size": args.batch, "precision": "fp32", "compile": False},
        }
    )
    plan = Plan(cfg)
    torch.manual_seed(0)
    mode = "fsdp" if d.world > 1 else "single"
    model = prepare(plan, build_model(cfg.model, args.blocks, None), 0)
    return Stage(plan, model, 0, False, Parallel(mode, d, False), recompute)


def step(stage, args, d):
    import torch

    data = torch.randint(0, 65536, (args.batch, args.context + 1), generator=torch.Generator().manual_seed(0))
    per_rank = args.batch // d.world
    stage.forward(data[d.rank * per_rank : (d.rank + 1) * per_rank]).backward()
    stage.opt.step()
    stage.opt.zero_grad(set_to_none=True)


def checkpoint_worker(args) -> None:
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    from growlm.train import checkpoint as ckpt
    from growlm.train.dist import init_distributed
    from growlm.train.parallel import Parallel
    from growlm.train.records import CheckpointState, Progress

    d = init_distributed("cpu")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    stage = build(args, d, recompute=False)
    step(stage, args, d)
    out = {"rank": d.rank, "world": d.world}
    root = Path(args.root)
    d.barrier()
    with PeakGrowth() as grew:
        state = ckpt.stage_state(stage.loss_model, stage.opt)
        out["sharded_bytes"] = tensor_bytes(state)
        ckpt.ShardedSave(root, CheckpointState(0, 1, False, Progress(1)), 2, d, state, background=False).finish()
        del state
    out["sharded_rss"] = grew.growth
    d.barrier()
    with PeakGrowth() as grew:
        full = StateDictOptions(full_state_dict=True)
        whole = {
            "model": get_model_state_dict(stage.loss_model, options=full),
            "optimizer": get_optimizer_state_dict(stage.loss_model, stage.opt, options=full),
        }
        out["gathered_bytes"] = tensor_bytes(whole)
        del whole
    out["gathered_rss"] = grew.growth
    d.barrier()
    with PeakGrowth() as grew:
        spread = Parallel("fsdp" if d.world > 1 else "single", d, False)  # as the trainer's _whole gathers it
        tensors = spread.model_state(stage.loss_model)
        out["boundary_bytes"] = tensor_bytes(tensors)
        del tensors
    out["boundary_rss"] = grew.growth
    Path(args.report).with_suffix(f".{d.rank}.json").write_text(json.dumps(out))
    d.barrier()


def activation_worker(args) -> None:
    import torch

    from growlm.train.dist import Dist

    d = Dist()
    torch.set_num_threads(os.cpu_count() or 1)
    stage = build(args, d, recompute=args.recompute)
    step(stage, args, d)  # a first step allocates AdamW state and the loss workspace
    with PeakGrowth() as grew:
        step(stage, args, d)
    Path(args.report).write_text(json.dumps({"step_rss": grew.growth}))


def run(args, command: list[str], env=None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.exit(f"bench_memory: a worker failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d-model", type=int, default=1024)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--worker", choices=("checkpoint", "activations"), help=argparse.SUPPRESS)
    parser.add_argument("--recompute", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "checkpoint":
        return checkpoint_worker(args)
    if args.worker == "activations":
        return activation_worker(args)
    sizes = ["--d-model", str(args.d_model), "--blocks", str(args.blocks), "--context", str(args.context)]
    sizes += ["--batch", str(args.batch)]
    me = [sys.executable, "-m", "benchmarks.bench_memory", *sizes]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for procs in (1, 2):
            report = Path(tmp) / f"ckpt-{procs}"
            common = ["--worker", "checkpoint", "--root", str(Path(tmp) / f"run-{procs}"), "--report", str(report)]
            if procs == 1:
                run(args, [*me, *common], {"RANK": "0"})
            else:
                launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
                run(args, [*launch, "-m", "benchmarks.bench_memory", *sizes, *common])
            rows[procs] = [json.loads(report.with_suffix(f".{r}.json").read_text()) for r in range(procs)]
        acts = {}
        for recompute in (False, True):
            report = Path(tmp) / f"acts-{recompute}.json"
            extra = ["--recompute"] if recompute else []
            run(args, [*me, "--worker", "activations", "--report", str(report), *extra])
            acts[recompute] = json.loads(report.read_text())["step_rss"]
    one = rows[1][0]
    print(
        f"\nd_model {args.d_model}, {args.blocks} blocks, V 65,536, fp32, AdamW after one step; MiB per process "
        "(bytes handed over / peak resident-set growth)\n"
    )
    print("| moment | 1 process | FSDP x 2, rank 0 | FSDP x 2, rank 1 | FSDP / 1 process (bytes) |")
    print("|---|---:|---:|---:|---:|")
    for key, name in (
        ("sharded", "checkpoint, sharded (DCP, now)"),
        ("gathered", "checkpoint, gathered (before DCP)"),
        ("boundary", "stage boundary (whole model, today)"),
    ):
        cells = [f"{r[key + '_bytes'] / MiB:,.0f} / {r[key + '_rss'] / MiB:,.0f}" for r in (one, *rows[2])]
        ratio = max(r[key + "_bytes"] for r in rows[2]) / one[key + "_bytes"]
        print(f"| {name} | {' | '.join(cells)} | {ratio:.2f}x |")
    print(
        f"\none training step, batch {args.batch} x {args.context} tokens, peak resident-set growth: "
        f"{acts[False] / MiB:,.0f} MiB without activation checkpointing, {acts[True] / MiB:,.0f} MiB with it "
        f"({acts[True] / acts[False]:.2f}x)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
