"""The model: a Hugging Face LlamaForCausalLM whose input embedding is the substrate (frozen) or trainable.

The LM head is untied. `cfg` is anything with the fields of growlm.config.ModelConfig (d_model, ff, n_heads,
kv_heads, context, rope_theta, rms_norm_eps, init_std); the model layer does not depend on the config module.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from growlm.errors import GrowlmError
from growlm.tokenizer import layout as L


def llama_config(cfg, depth: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=L.VOCAB_SIZE,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.ff,
        num_hidden_layers=depth,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.context,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        rms_norm_eps=cfg.rms_norm_eps,
        initializer_range=cfg.init_std,
        tie_word_embeddings=False,
        bos_token_id=L.BOS_ID,
        eos_token_id=L.EOS_ID,
        pad_token_id=L.PAD_ID,
        attention_bias=False,
        mlp_bias=False,
    )


def build_model(cfg, depth: int, embedding: torch.Tensor | None) -> LlamaForCausalLM:
    """A fresh model; `embedding` (V x d_model) is copied into the input embedding when given."""
    model = LlamaForCausalLM(llama_config(cfg, depth))
    if embedding is not None:
        if tuple(embedding.shape) != (L.VOCAB_SIZE, cfg.d_model):
            raise GrowlmError(f"substrate is {tuple(embedding.shape)}, the model needs ({L.VOCAB_SIZE}, {cfg.d_model})")
        with torch.no_grad():
            model.model.embed_tokens.weight.copy_(embedding)
    return model


def set_depth(model: LlamaForCausalLM, depth: int) -> None:
    model.config.num_hidden_layers = depth
    for i, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = i


def base_model(model: torch.nn.Module) -> LlamaForCausalLM:
    """The LlamaForCausalLM inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def embed(llama: torch.nn.Module, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """(hidden states, positions, rotary cos/sin) entering block 0 of a LlamaModel for input_ids [B, T]."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
    hidden = llama.embed_tokens(input_ids)
    return hidden, positions, llama.rotary_emb(hidden, positions)


def call_block(block: torch.nn.Module, hidden: torch.Tensor, positions: torch.Tensor, rotary) -> torch.Tensor:
    """One decoder block as LlamaModel.forward calls it, for full causal sequences: no padding mask, no cache.
    The one place that knows the block's call signature (tests/test_model_llama.py holds it to the HF forward)."""
    return block(hidden, attention_mask=None, position_ids=positions, position_embeddings=rotary)


def run_blocks(
    llama: torch.nn.Module, hidden: torch.Tensor, positions, rotary, start: int, stop: int | None, call=call_block
) -> torch.Tensor:
    """Blocks start..stop-1 of a LlamaModel (`call` may be a compiled call_block)."""
    for block in llama.layers[start:stop]:
        hidden = call(block, hidden, positions, rotary)
    return hidden
