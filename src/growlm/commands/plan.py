"""growlm plan CONFIG [--set k=v ...] [--gpus N] [--gpu h100|h200|a100] [--mfu 0.4]: cost of a run before it runs."""

from __future__ import annotations

import argparse

# sorted(growlm.train.costs.GPUS), spelled out so that the CLI starts without torch (tests/test_train_costs.py checks)
GPU_NAMES = ("a100", "h100", "h200")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="memory per GPU and time per stage of a config, before anything is allocated")
    p.add_argument("config", help="TOML config (configs/*.toml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, as for `growlm grow`",
    )
    p.add_argument("--gpus", type=int, default=1, help="GPUs the global batch is split over (default 1)")
    p.add_argument("--gpu", choices=GPU_NAMES, default="h100", help="GPU kind (default h100)")
    p.add_argument("--mfu", type=float, default=0.4, help="assumed model FLOPs utilisation (default 0.4)")
    p.set_defaults(func=_plan)


def _plan(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from growlm.config import load_config
    from growlm.errors import GrowlmError
    from growlm.train.costs import GPUS, parallel_choice, plan_rows, stage_costs

    if args.gpus < 1 or not 0 < args.mfu <= 1:
        raise GrowlmError("--gpus must be >= 1 and --mfu in (0, 1]")
    cfg, gpu = load_config(args.config, args.overrides), GPUS[args.gpu]
    costs = stage_costs(cfg, args.gpus, gpu, args.mfu)
    table = Table(
        title=f"{cfg.name} on {args.gpus} x {gpu.name} ({gpu.memory_gib:.0f} GiB, "
        f"{gpu.bf16_flops / 1e12:.0f} TFLOP/s bf16 dense) at {args.mfu:.0%} MFU",
        title_justify="left",
    )
    columns = (
        "stage",
        "depth",
        "d_model",
        "trainable",
        "tokens",
        "PFLOPs",
        "GiB/GPU ddp",
        "fsdp",
        "ddp+AC",
        "fsdp+AC",
        "time",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in plan_rows(costs, gpu):
        table.add_row(*row)
    Console(width=130).print(table)
    mode, why = parallel_choice(cfg, costs, args.gpus, gpu)
    print(f"parallel: {mode} ({why})")
    print(
        "GiB per GPU: fp32 weights + gradients and AdamW state of what trains + activations of one micro-batch, "
        "replicated (ddp) or sharded over the GPUs (fsdp; growlm.train.memory); +AC: with activation checkpointing "
        "(train.activation_checkpointing: each trained block keeps only its input); (NO): more than a GPU holds; "
        "time: training FLOPs / (GPUs x peak x MFU)."
    )
