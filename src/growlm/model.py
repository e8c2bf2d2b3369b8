"""The model: a Hugging Face LlamaForCausalLM whose input embedding is the substrate (frozen) or trainable.

The LM head is untied. Exported models are plain HF folders (AutoModelForCausalLM / AutoTokenizer, no remote
code) plus growlm.json, which records the substrate and tokenizer hashes that composition checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from growlm.config import ModelConfig
from growlm.errors import GrowlmError
from growlm.io import atomic_dir, atomic_write_json
from growlm.tokenizer import layout as L

MODEL_FORMAT = "growlm-model-v1"


def llama_config(cfg: ModelConfig, depth: int) -> LlamaConfig:
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


def build_model(cfg: ModelConfig, depth: int, embedding: torch.Tensor | None) -> LlamaForCausalLM:
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


def export_model(model: LlamaForCausalLM, tokenizer, out: str | Path, meta: dict, force: bool = True) -> Path:
    """Write a plain HF model folder plus growlm.json; `meta` holds substrate/stage/run facts."""
    with atomic_dir(out, force) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        GenerationConfig(bos_token_id=L.BOS_ID, eos_token_id=L.EOS_ID, pad_token_id=L.PAD_ID).save_pretrained(tmp)
        tokenizer.save(tmp, model_max_length=model.config.max_position_embeddings)
        atomic_write_json(tmp / "growlm.json", {
            "format": MODEL_FORMAT,
            "tokenizer_sha256": tokenizer.sha256,
            "vocab_size": model.config.vocab_size,
            "depth": model.config.num_hidden_layers,
            "stage": None,
            "run": None,
            **meta,
        })
    return Path(out)


def read_model_meta(path: str | Path) -> dict:
    path = Path(path)
    meta_file = path / "growlm.json"
    if not meta_file.is_file():
        raise GrowlmError(f"{path} is not a growlm model folder (no growlm.json); export one with `growlm export`")
    return json.loads(meta_file.read_text(encoding="utf-8"))


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
