"""LoRA phases (peft): adapters on the attention and MLP projections of every frozen block.

The rank is solved so that the stage's trainable parameters (new blocks + final norm + LM head [+ embedding] +
adapters) fit the budget; adapters are merged into the base weights in float32 at the end of the phase.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM

from growlm.errors import GrowlmError

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_params_per_rank(model: LlamaForCausalLM, blocks: range) -> int:
    total = 0
    for i in blocks:
        for name, module in model.model.layers[i].named_modules():
            if name.rsplit(".", 1)[-1] in LORA_TARGETS:
                total += module.in_features + module.out_features
    return total


def solve_lora_rank(budget: int, trainable_without_lora: int, per_rank: int, max_rank: int, stage: int) -> int:
    room = budget - trainable_without_lora
    rank = min(room // per_rank, max_rank) if per_rank else 0
    if rank < 1:
        raise GrowlmError(
            f"growth.stages.{stage}.lora: no room for adapters under the budget of {budget:,} trainable parameters "
            f"(new blocks, norm and head already take {trainable_without_lora:,}; rank 1 needs {per_rank:,} more); "
            "raise growth.budget_factor or add fewer blocks in this stage"
        )
    return rank


def add_lora(model: LlamaForCausalLM, frozen_blocks: int, rank: int, alpha_ratio: float) -> torch.nn.Module:
    """Wrap with peft LoRA on the frozen blocks; the non-LoRA trainable set is kept as it was."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    targets = (
        rf"model\.layers\.({'|'.join(map(str, range(frozen_blocks)))})\.(self_attn|mlp)\.({'|'.join(LORA_TARGETS)})"
    )
    cfg = LoraConfig(r=rank, lora_alpha=alpha_ratio * rank, lora_dropout=0.0, target_modules=targets, bias="none")
    peft_model = get_peft_model(model, cfg)
    for p in trainable:
        p.requires_grad_(True)
    return peft_model


def merge_lora(peft_model: torch.nn.Module) -> LlamaForCausalLM:
    """Fold the adapters into the base weights in float32 and return the plain model."""
    if any(p.dtype != torch.float32 for p in peft_model.parameters()):
        raise GrowlmError("LoRA adapters are merged in float32; the model holds other dtypes (a bug, please report)")
    return peft_model.merge_and_unload()
