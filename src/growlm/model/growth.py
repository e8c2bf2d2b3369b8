"""Growth operators: how the blocks stacked on top of a model are initialised (growth.init in a run config).

An operator takes the model (its current blocks untouched) and the index k of the new block among those added
in this stage, and returns the block to stack. Adding one is a function here plus an entry in INIT_OPERATORS;
config validation reads the registry. What each preserves, with sources: docs/GROWTH.md.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

from growlm.errors import GrowlmError
from growlm.model.llama import set_depth

Operator = Callable[[LlamaForCausalLM, int], LlamaDecoderLayer]


def fresh_block(model: LlamaForCausalLM, k: int) -> LlamaDecoderLayer:
    """random: a block drawn with the model's initializer (the paper)."""
    block = LlamaDecoderLayer(model.config, layer_idx=len(model.model.layers) + k)
    block.apply(model._init_weights)
    return block.to(model.model.embed_tokens.weight.device)


def identity_block(model: LlamaForCausalLM, k: int) -> LlamaDecoderLayer:
    """identity: a fresh block whose attention and MLP output projections are zero (LLaMA-Pro), so it adds nothing
    to the residual stream and the grown model computes exactly the old function."""
    block = fresh_block(model, k)
    with torch.no_grad():
        block.self_attn.o_proj.weight.zero_()
        block.mlp.down_proj.weight.zero_()
    return block


def copy_top(model: LlamaForCausalLM, k: int) -> LlamaDecoderLayer:
    """copy_top: a copy of the current top block."""
    return copy.deepcopy(model.model.layers[-1])


def copy_middle(model: LlamaForCausalLM, k: int) -> LlamaDecoderLayer:
    """copy_middle: a copy of the current middle block (the lower one for an even depth)."""
    layers = model.model.layers
    return copy.deepcopy(layers[(len(layers) - 1) // 2])


def stack(model: LlamaForCausalLM, k: int) -> LlamaDecoderLayer:
    """stack: the k-th new block copies block k mod depth, so n new blocks repeat the whole stack (Gstack)."""
    layers = model.model.layers
    return copy.deepcopy(layers[k % len(layers)])


INIT_OPERATORS: dict[str, Operator] = {
    "random": fresh_block,
    "identity": identity_block,
    "copy_top": copy_top,
    "copy_middle": copy_middle,
    "stack": stack,
}
# On an empty model there is nothing to copy or to preserve: the first stage's blocks are random for every
# operator, so arms that differ only in their operator train the same first stage.
RANDOM_ON_EMPTY = {"identity", "copy_top", "copy_middle", "stack"}


def grow(model: LlamaForCausalLM, n_new: int, init: str) -> None:
    """Stack n_new blocks on top, in place; every new block is made from the model as it was before the stage."""
    layers = model.model.layers
    depth = len(layers)
    if init not in INIT_OPERATORS:
        raise GrowlmError(f"growth.init={init!r} is not one of {', '.join(INIT_OPERATORS)}")
    operator = fresh_block if depth == 0 and init in RANDOM_ON_EMPTY else INIT_OPERATORS[init]
    layers.extend([operator(model, k) for k in range(n_new)])
    set_depth(model, len(layers))
