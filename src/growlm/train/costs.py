"""`growlm plan`: what a run will cost before anything is allocated: memory per GPU and time per stage.

Memory per process comes from growlm.train.memory (weights, gradients + AdamW state of what trains, activations of
one micro-batch), for a replica on every GPU (ddp) and for FSDP2 shards (fsdp); `parallel_choice` is what
train.parallel = "auto" would take on those GPUs. Time is the stage's training FLOPs (growlm.train.flops on a
meta-device model: nothing is allocated) divided by GPUs x the datasheet dense bf16 peak x an assumed MFU. The
stage's model is set up exactly as the trainer sets it up (frozen blocks, LoRA adapters), so its FLOPs per token
are those the run logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from growlm.config import RunConfig
from growlm.model.llama import base_model, build_model
from growlm.train.flops import flops_per_token
from growlm.train.memory import GiB, stage_estimates
from growlm.train.plan import Plan
from growlm.train.stage import prepare


@dataclass(frozen=True)
class Gpu:
    name: str
    bf16_flops: float  # datasheet dense bf16 peak
    memory_gib: float


GPUS = {"a100": Gpu("A100 80GB", 312e12, 80), "h100": Gpu("H100 SXM", 989e12, 80), "h200": Gpu("H200", 989e12, 141)}


@dataclass(frozen=True)
class StageCost:
    stage: int
    depth: int
    d_model: int
    widened: bool  # the stage starts by widening the model
    trainable: int
    tokens: int
    flops: float
    memory: float  # bytes per GPU, the model replicated (ddp)
    sharded_memory: float  # bytes per GPU, the model sharded over the GPUs (fsdp)
    recomputed_memory: float  # ddp with activation checkpointing
    recomputed_sharded_memory: float  # fsdp with activation checkpointing
    seconds: float


def stage_shapes(cfg: RunConfig) -> list[tuple[float, int]]:
    """(training FLOPs per token, trainable parameters) of each stage, from meta-device models: nothing allocated."""
    plan, out = Plan(cfg), []
    for k, depth in enumerate(plan.depths):
        with torch.device("meta"):
            prepared = prepare(plan, build_model(plan.models[k], depth, None), k)
        out.append((flops_per_token(base_model(prepared.model), cfg.model.context).total, prepared.trainable()))
    return out


def stage_costs(cfg: RunConfig, gpus: int, gpu: Gpu, mfu: float) -> list[StageCost]:
    plan, memory, sharded = Plan(cfg), stage_estimates(cfg, gpus), stage_estimates(cfg, gpus, sharded=True)
    recomputed = stage_estimates(cfg, gpus, recompute=True)
    recomputed_sharded = stage_estimates(cfg, gpus, sharded=True, recompute=True)
    costs = []
    for k, (per_token, trainable) in enumerate(stage_shapes(cfg)):
        tokens = plan.steps_in(k) * plan.tokens_per_step
        flops = per_token * tokens
        costs.append(
            StageCost(
                stage=k + 1,
                depth=plan.depths[k],
                d_model=plan.models[k].d_model,
                widened=plan.widens(k),
                trainable=trainable,
                tokens=tokens,
                flops=flops,
                memory=memory[k].total,
                sharded_memory=sharded[k].total,
                recomputed_memory=recomputed[k].total,
                recomputed_sharded_memory=recomputed_sharded[k].total,
                seconds=flops / (gpus * gpu.bf16_flops * mfu),
            )
        )
    return costs


def parallel_choice(cfg: RunConfig, costs: list[StageCost], gpus: int, gpu: Gpu) -> tuple[str, str]:
    """(mode, why): what the run would use on `gpus` x `gpu` (growlm.train.parallel.choose's rule, then
    growlm.train.memory.recompute_blocks's for activation checkpointing, on the datasheet memory instead of the
    memory free at the start)."""
    mode, why = _mode(cfg, costs, gpus, gpu)
    memory = {"ddp": "memory", "single": "memory", "fsdp": "sharded_memory"}[mode]
    need = max(getattr(c, memory) for c in costs) / GiB
    recomputed = max(getattr(c, "recomputed_" + memory) for c in costs) / GiB
    choice = cfg.train.activation_checkpointing
    if choice == "blocks" or (choice == "auto" and need > gpu.memory_gib):
        fits = "fits" if recomputed <= gpu.memory_gib else "does NOT fit"
        return mode, f"{why}; with activation checkpointing ({choice}): {recomputed:,.1f} GiB per GPU, {fits}"
    if need > gpu.memory_gib:
        hint = "" if choice != "none" else "; train.activation_checkpointing = 'auto' would turn it on"
        return mode, f"{why}; does NOT fit: {need:,.1f} GiB per GPU at the peak{hint}"
    return mode, why


def _mode(cfg: RunConfig, costs: list[StageCost], gpus: int, gpu: Gpu) -> tuple[str, str]:
    """growlm.train.parallel.choose's rule: ddp when a replica fits without activation checkpointing, else fsdp."""
    replica, shards = max(c.memory for c in costs) / GiB, max(c.sharded_memory for c in costs) / GiB
    if gpus == 1:
        return "single", f"one GPU: {replica:,.1f} GiB of {gpu.memory_gib:.0f}"
    if cfg.train.parallel != "auto":
        return cfg.train.parallel, f"train.parallel = {cfg.train.parallel!r}"
    if replica <= gpu.memory_gib:
        return "ddp", f"a replica needs {replica:,.1f} GiB at its peak, within the {gpu.memory_gib:.0f} GiB of a GPU"
    return "fsdp", (
        f"a replica needs {replica:,.1f} GiB at its peak, more than the {gpu.memory_gib:.0f} GiB of a GPU; "
        f"sharded over {gpus}: {shards:,.1f} GiB"
    )


def plan_rows(costs: list[StageCost], gpu: Gpu) -> list[list[str]]:
    def gib(value: float) -> str:
        return f"{value / GiB:,.1f}" + ("" if value / GiB <= gpu.memory_gib else " (NO)")

    rows = [
        [
            str(c.stage),
            str(c.depth),
            ("widened to " if c.widened else "") + str(c.d_model),
            f"{c.trainable / 1e6:,.1f}M",
            f"{c.tokens / 1e6:,.1f}M",
            f"{c.flops / 1e15:,.2f}",
            gib(c.memory),
            gib(c.sharded_memory),
            gib(c.recomputed_memory),
            gib(c.recomputed_sharded_memory),
            _duration(c.seconds),
        ]
        for c in costs
    ]
    rows.append(
        [
            "all",
            "",
            "",
            "",
            f"{sum(c.tokens for c in costs) / 1e6:,.1f}M",
            f"{sum(c.flops for c in costs) / 1e15:,.2f}",
            gib(max(c.memory for c in costs)),
            gib(max(c.sharded_memory for c in costs)),
            gib(max(c.recomputed_memory for c in costs)),
            gib(max(c.recomputed_sharded_memory for c in costs)),
            _duration(sum(c.seconds for c in costs)),
        ]
    )
    return rows


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
