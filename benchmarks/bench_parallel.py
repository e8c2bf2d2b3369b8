"""Processes on one CPU: tokens/s and memory per process of one process vs DDP x 2 vs FSDP2 x 2 (gloo).

The same model, global batch and data in every mode: a monolithic stage of growlm's own training (frozen visual-size
substrate, every block and the LM head training, AdamW), built by growlm.train.stage and spread by
growlm.train.parallel exactly as `growlm grow` spreads it. Each mode runs in its own processes (torchrun for two),
in turn, `--rounds` times, so load changes hit all modes alike; the table gives the median step time of each.

Memory per process: the parameters and AdamW state this process holds (FSDP2 holds a 1/world share of each;
DDP a whole copy) and the process's peak resident set (Python, torch and the activations included).

What it cannot show: a CPU is not a GPU interconnect. Two gloo processes on one machine share its cores and its
memory bandwidth, so DDP x 2 is not twice as fast here, and FSDP's all-gathers cost memory copies, not NVLink time.
The numbers say that the modes run and what each holds in memory, not how they scale on GPUs.

    .venv/bin/python -m benchmarks.bench_parallel [--d-model 256] [--blocks 4] [--context 128] [--batch 8]
                                                  [--steps 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = (("single", 1), ("ddp", 2), ("fsdp", 2))


def _local_bytes(tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def worker(args) -> None:
    import torch

    from growlm.config import validate_config
    from growlm.model.llama import build_model
    from growlm.train.dist import init_distributed
    from growlm.train.parallel import Parallel
    from growlm.train.plan import Plan
    from growlm.train.stage import Stage, prepare

    d = init_distributed("cpu")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    cfg = validate_config(
        {
            "model": {"d_model": args.d_model, "n_heads": 4, "context": args.context},
            "growth": {"stages": [{"add_blocks": args.blocks}]},
            "train": {"batch_size": args.batch, "precision": "fp32", "compile": False},
        }
    )
    plan = Plan(cfg)
    torch.manual_seed(0)
    stage = Stage(
        plan, prepare(plan, build_model(cfg.model, args.blocks, None), 0), 0, False, Parallel(args.mode, d, False)
    )
    data = torch.randint(
        0, 65536, (args.steps + 1, args.batch, args.context + 1), generator=torch.Generator().manual_seed(0)
    )
    per_rank = args.batch // d.world
    times = []
    for step in range(args.steps + 1):  # the first is a warm-up
        start = time.perf_counter()
        batch = data[step, d.rank * per_rank : (d.rank + 1) * per_rank]
        stage.forward(batch).backward()
        torch.nn.utils.clip_grad_norm_(stage.params, 1.0)
        stage.opt.step()
        stage.opt.zero_grad(set_to_none=True)
        d.barrier()
        times.append(time.perf_counter() - start)
    held = sum(_local_bytes(p) for p in stage.model.parameters())
    held += sum(_local_bytes(v) for s in stage.opt.state.values() for v in s.values() if torch.is_tensor(v))
    mine = {
        "step_s": statistics.median(times[1:]),
        "held": held,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    rows = [mine]
    if d.world > 1:
        import torch.distributed as dist

        rows = [None] * d.world
        dist.all_gather_object(rows, mine)
    if d.main:
        Path(args.out).write_text(json.dumps(rows))


def launch(mode: str, procs: int, args, out: Path) -> list[dict]:
    flags = [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k in ("d_model", "blocks", "context", "batch", "steps")
    ]
    own = ["-m", "benchmarks.bench_parallel", "--worker", "--mode", mode, "--out", str(out), *flags]
    if procs == 1:
        command = [sys.executable, *own]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs), "--standalone", *own]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // procs))}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{mode} x {procs} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=8, help="global batch (sequences per step over all processes)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="single", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    from benchmarks.common import machine_line, print_table

    print(machine_line())
    load_before = os.getloadavg()[0]
    results: dict[str, list[list[dict]]] = {mode: [] for mode, _ in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode, procs in MODES:
                results[mode].append(launch(mode, procs, args, Path(tmp) / f"{mode}-{r}.json"))
    tokens = args.batch * args.context
    base = statistics.median(rows[0]["step_s"] for rows in results["single"])
    single_held = results["single"][0][0]["held"]
    table = []
    for mode, procs in MODES:
        step = statistics.median(max(row["step_s"] for row in rows) for rows in results[mode])
        last = results[mode][-1]
        held = max(row["held"] for row in last)
        table.append(
            [
                mode,
                str(procs),
                f"{tokens / step:,.0f}",
                f"{base / step:.2f}x",
                f"{held / 2**20:,.1f}",
                f"{held / single_held:.2f}x",
                f"{max(row['rss'] for row in last) / 2**20:,.0f}",
            ]
        )
    print_table(
        f"\nd_model {args.d_model}, {args.blocks} blocks, context {args.context}, global batch {args.batch}, "
        f"fp32, median of {args.rounds} rounds x {args.steps} steps (load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after)",
        [
            "mode",
            "processes",
            "tokens/s",
            "vs 1 process",
            "params+AdamW MiB/process",
            "vs 1 process",
            "peak RSS MiB/process",
        ],
        table,
    )
    print(
        "\nA CPU is not a GPU interconnect: two gloo processes share one machine's cores and memory bandwidth, so "
        "these rows show what each mode holds and that it runs, not how it scales on GPUs."
    )


if __name__ == "__main__":
    main()
