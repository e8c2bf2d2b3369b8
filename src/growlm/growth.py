"""Stage operations of layer-wise growth: stacking new blocks, freezing, LoRA phases, frozen-tensor hashes.

Initialisation of new blocks (growth.init):
- random: fresh blocks with the model's initializer (the paper).
- identity: fresh blocks whose attention and MLP output projections are zero, so each new block adds nothing to
  the residual stream and the grown model computes exactly the old function.
- copy_top / copy_middle: copies of the current top or middle block.
- stack: copies of the whole current stack, repeated as needed (Gstack).

LoRA phases (peft): adapters on the attention and MLP projections of every frozen block, rank solved so that the
stage's trainable parameters (new blocks + final norm + LM head [+ embedding] + adapters) fit the budget.
Adapters are merged into the base weights in float32 at the end of the phase.
"""

from __future__ import annotations

import copy
import hashlib

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

from growlm.errors import GrowlmError
from growlm.model import set_depth

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _fresh_block(model: LlamaForCausalLM, idx: int) -> LlamaDecoderLayer:
    block = LlamaDecoderLayer(model.config, layer_idx=idx)
    block.apply(model._init_weights)
    return block.to(model.model.embed_tokens.weight.device)


def grow(model: LlamaForCausalLM, n_new: int, init: str) -> None:
    """Stack n_new blocks on top, in place."""
    layers = model.model.layers
    depth = len(layers)
    for k in range(n_new):
        if init in ("random", "identity") or depth == 0:
            block = _fresh_block(model, depth + k)
            if init == "identity":
                with torch.no_grad():
                    block.self_attn.o_proj.weight.zero_()
                    block.mlp.down_proj.weight.zero_()
        elif init == "copy_top":
            block = copy.deepcopy(layers[depth - 1])
        elif init == "copy_middle":
            block = copy.deepcopy(layers[(depth - 1) // 2])
        elif init == "stack":
            block = copy.deepcopy(layers[k % depth])
        else:
            raise GrowlmError(f"growth.init={init!r} is not one of random, identity, copy_top, copy_middle, stack")
        layers.append(block)
    set_depth(model, len(layers))


def set_trainable(model: LlamaForCausalLM, n_frozen_blocks: int, train_embedding: bool) -> None:
    """Blocks below n_frozen_blocks and (unless train_embedding) the embedding are frozen; the rest trains."""
    for p in model.parameters():
        p.requires_grad_(True)
    model.model.embed_tokens.weight.requires_grad_(train_embedding)
    for block in model.model.layers[:n_frozen_blocks]:
        for p in block.parameters():
            p.requires_grad_(False)


def frozen_tensor_hashes(model: torch.nn.Module) -> dict[str, str]:
    """sha256 of every parameter that does not train, by name."""
    return {
        name: hashlib.sha256(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
        for name, p in model.named_parameters()
        if not p.requires_grad
    }


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
            "raise growth.budget_factor or add fewer blocks in this stage")
    return rank


def add_lora(model: LlamaForCausalLM, frozen_blocks: int, rank: int, alpha_ratio: float) -> torch.nn.Module:
    """Wrap with peft LoRA on the frozen blocks; the non-LoRA trainable set is kept as it was."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    targets = rf"model\.layers\.({'|'.join(map(str, range(frozen_blocks)))})\.(self_attn|mlp)\.({'|'.join(LORA_TARGETS)})"
    cfg = LoraConfig(r=rank, lora_alpha=alpha_ratio * rank, lora_dropout=0.0, target_modules=targets, bias="none")
    peft_model = get_peft_model(model, cfg)
    for p in trainable:
        p.requires_grad_(True)
    return peft_model


def merge_lora(peft_model: torch.nn.Module) -> LlamaForCausalLM:
    """Fold the adapters into the base weights in float32 and return the plain model."""
    assert all(p.dtype == torch.float32 for p in peft_model.parameters()), "merge happens in float32"
    return peft_model.merge_and_unload()


def base_model(model: torch.nn.Module) -> LlamaForCausalLM:
    """The LlamaForCausalLM inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
