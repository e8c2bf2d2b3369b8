"""Per-word vectors from a causal LM: the input embedding (substrate) and every layer's attention and block output.

Each word is fed alone after <s>, so that position 0 (where attention sinks form) is not the word itself;
vectors are the mean over the word's own tokens. Layer outputs are taken with forward hooks on the decoder
layers and their self-attention modules, so they do not depend on how a model reports hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from growlm.errors import GrowlmError

SUBSTRATE = "substrate"


def representation_names(depth: int) -> list[str]:
    """substrate, then layer1.attention, layer1.block, layer2.attention, ..."""
    return [SUBSTRATE] + [f"layer{i}.{kind}" for i in range(1, depth + 1) for kind in ("attention", "block")]


def layer_and_kind(name: str) -> tuple[int, str]:
    """(0, "substrate") or (layer, "attention"|"block") for a representation name."""
    if name == SUBSTRATE:
        return 0, SUBSTRATE
    layer, kind = name.split(".")
    return int(layer.removeprefix("layer")), kind


def decoder_layers(model: nn.Module) -> Sequence[nn.Module]:
    layers = getattr(model.base_model, "layers", None)
    if layers is None or not all(hasattr(layer, "self_attn") for layer in layers):
        raise GrowlmError(f"{type(model).__name__} has no decoder layers with self_attn (Llama-style model expected)")
    return layers


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def word_vectors(
    model: nn.Module, words: Sequence[Sequence[int]], bos_id: int, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """{representation name: (n_words, d) float32}, names as in representation_names(depth)."""
    if any(len(ids) == 0 for ids in words):
        raise GrowlmError("a word encodes to no tokens; remove empty words from the groups file")
    model.eval()
    layers = decoder_layers(model)
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for i, layer in enumerate(layers, start=1):
        for name, module in ((f"layer{i}.attention", layer.self_attn), (f"layer{i}.block", layer)):
            hooks.append(
                module.register_forward_hook(lambda _m, _inp, out, name=name: captured.__setitem__(name, _first(out)))
            )
    embedding = model.get_input_embeddings()
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in representation_names(len(layers))}
    try:
        for start in range(0, len(words), batch_size):
            batch = words[start : start + batch_size]
            width = 1 + max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), bos_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            word_mask = torch.zeros((len(batch), width), dtype=torch.float32)
            for row, ids in enumerate(batch):
                input_ids[row, 1 : 1 + len(ids)] = torch.tensor(ids)
                attention[row, : 1 + len(ids)] = 1
                word_mask[row, 1 : 1 + len(ids)] = 1.0
            device = embedding.weight.device
            input_ids, attention, word_mask = input_ids.to(device), attention.to(device), word_mask.to(device)
            captured.clear()
            captured[SUBSTRATE] = embedding(input_ids)
            model.base_model(input_ids=input_ids, attention_mask=attention, use_cache=False)
            weights = (word_mask / word_mask.sum(1, keepdim=True)).unsqueeze(-1)
            for name in pooled:
                pooled[name].append((captured[name].float() * weights).sum(1).cpu().numpy())
    finally:
        for hook in hooks:
            hook.remove()
    return {name: np.concatenate(parts) for name, parts in pooled.items()}
