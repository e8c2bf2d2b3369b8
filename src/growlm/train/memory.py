"""Will the run fit? An estimate of training memory from the config alone, checked before anything is allocated.

Per stage: fp32 weights of the whole model, gradients and two AdamW moments of what the stage trains, and the
activations of one micro-batch (about (34 d + 5 heads context) x 4 bytes per token per block, the usual
transformer estimate in fp32, plus the fused cross-entropy chunk). The largest stage is compared with the memory
free now: MemAvailable (/proc/meminfo, or psutil) on CPU, torch.cuda.mem_get_info on a GPU. It is an estimate:
grow(..., check_memory=False) (`growlm grow --ignore-memory-check`) skips it.

Sharded (FSDP2 over `world` processes): weights, gradients and AdamW state are split over the processes; what is
gathered at once is added back: the LM head with its full gradient (the root unit stays gathered through the
step) and two decoder blocks (the one computing and the one prefetched).
"""

from __future__ import annotations

from dataclasses import dataclass

from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.tokenizer.layout import VOCAB_SIZE

GiB = 1 << 30


@dataclass(frozen=True)
class Estimate:
    params: int  # of the largest model
    weights: int  # bytes, by the stage that needs the most
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations


def block_params(m) -> int:
    """Parameters of one decoder block of a model shaped like `m` (a growlm.config.ModelConfig)."""
    head_dim = m.d_model // m.n_heads
    attention = 2 * m.d_model * m.d_model + 2 * m.d_model * m.kv_heads * head_dim
    return attention + 3 * m.d_model * m.ff + 2 * m.d_model


def stage_estimates(cfg: RunConfig, world: int = 1, sharded: bool = False, recompute: bool = False) -> list[Estimate]:
    """Bytes one process needs in each stage of the run (model replicated, or `sharded` over `world`; with
    `recompute`, activation checkpointing: each block keeps its input, one block's activations live at a time)."""
    t = cfg.train
    estimates, depth = [], 0
    for k, (stage, m) in enumerate(zip(cfg.growth.stages, cfg.stage_models())):  # a widening stage's own shape
        embedding, head, block = VOCAB_SIZE * m.d_model, VOCAB_SIZE * m.d_model + m.d_model, block_params(m)
        tokens = max(1, t.batch_size // (world * t.grad_accum)) * m.context
        per_token_block = (34 * m.d_model + 5 * m.n_heads * m.context) * 4
        old, depth = depth, depth + stage.add_blocks
        trains_embedding = (
            stage.train_embedding if stage.train_embedding is not None else (cfg.substrate.kind == "trainable")
        )
        # a widening stage keeps gradients and AdamW state of whole tensors even where old slices are frozen
        trained_blocks = depth if stage.trains_old_blocks or stage.widens or k == 0 else depth - old
        trainable = head + trained_blocks * block + (embedding if trains_embedding else 0)
        params = embedding + head + depth * block
        kept = (
            depth * tokens * 4 * m.d_model + tokens * per_token_block if recompute else depth * tokens * per_token_block
        )
        acts = kept + 3 * t.ce_chunk * VOCAB_SIZE * 4
        if sharded:
            gathered = 4 * (2 * head + 2 * block)
            estimates.append(Estimate(params, 4 * params // world + gathered, 12 * trainable // world, acts))
        else:
            estimates.append(Estimate(params, 4 * params, 12 * trainable, acts))
    return estimates


def estimate(cfg: RunConfig, world: int = 1, sharded: bool = False, recompute: bool = False) -> Estimate:
    """Bytes one process needs at the peak of the run (the stage that needs the most)."""
    return max(stage_estimates(cfg, world, sharded, recompute), key=lambda e: e.total)


def available_bytes(device) -> tuple[int | None, str]:
    """(free bytes, where) for the training device; None when it cannot be told."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0], f"free on {device}"
    try:
        import psutil

        return psutil.virtual_memory().available, "available RAM"
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM"
    except OSError:
        pass
    return None, "unknown"


def shortfall(cfg: RunConfig, dist_info, sharded: bool = False, recompute: bool = False) -> str | None:
    """Why the run does not fit the memory free on its device (with the numbers), or None when it fits or the
    free memory cannot be told."""
    on_cpu = dist_info.device.type != "cuda"
    need = estimate(cfg, dist_info.world, sharded, recompute)
    total = need.total * (dist_info.world if on_cpu else 1)  # CPU processes share one machine's RAM
    free, where = available_bytes(dist_info.device)
    if free is None or total <= free:
        return None
    per_process = f" x {dist_info.world} processes" if on_cpu and dist_info.world > 1 else ""
    return (
        f"the run needs about {total / GiB:,.1f} GiB ({need.params / 1e6:,.0f}M parameters: weights "
        f"{need.weights / GiB:,.1f} GiB, gradients and AdamW {need.optimizer / GiB:,.1f} GiB, activations "
        f"{need.activations / GiB:,.1f} GiB{per_process}{', sharded' if sharded else ''}"
        f"{', activation checkpointing' if recompute else ''})"
        f" but only {free / GiB:,.1f} GiB is {where}"
    )


def recompute_blocks(cfg: RunConfig, dist_info, sharded: bool = False) -> bool:
    """Whether the run checkpoints its trained blocks' activations: train.activation_checkpointing, where "auto"
    turns it on when the estimate does not fit the device without it (and the free memory can be told)."""
    choice = cfg.train.activation_checkpointing
    if choice != "auto":
        return choice == "blocks"
    return shortfall(cfg, dist_info, sharded) is not None


def check_fits(cfg: RunConfig, dist_info, sharded: bool = False, recompute: bool = False) -> None:
    """Refuse, with the numbers, a run whose estimate exceeds the memory free on its device."""
    problem = shortfall(cfg, dist_info, sharded, recompute)
    if problem is not None:
        raise GrowlmError(
            f"{problem}; make model.d_model, the depth, train.batch_size or model.context smaller (or raise "
            "train.grad_accum"
            + ("" if sharded or dist_info.world == 1 else ", or shard the model: train.parallel = 'fsdp'")
            + "), or turn this check off (`check_memory`)"
        )
