"""What trains in a stage, and the proof that nothing else changed: sha256 of every frozen tensor."""

from __future__ import annotations

import hashlib

import torch
from transformers import LlamaForCausalLM


def set_trainable(model: LlamaForCausalLM, n_frozen_blocks: int, train_embedding: bool) -> None:
    """Blocks below n_frozen_blocks and (unless train_embedding) the embedding are frozen; the rest trains."""
    for p in model.parameters():
        p.requires_grad_(True)
    model.model.embed_tokens.weight.requires_grad_(train_embedding)
    for block in model.model.layers[:n_frozen_blocks]:
        for p in block.parameters():
            p.requires_grad_(False)


def _sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def frozen_tensor_hashes(model: torch.nn.Module, regions: dict | None = None) -> dict[str, str]:
    """sha256 of every parameter that does not train, by name, and of each frozen slice of a trained one
    (`regions`: name -> index region, growlm.train.slices) as "name[old]"."""
    hashes = {name: _sha256(p) for name, p in model.named_parameters() if not p.requires_grad}
    if regions:
        named = dict(model.named_parameters())
        hashes |= {f"{name}[old]": _sha256(named[name][region]) for name, region in regions.items()}
    return hashes
