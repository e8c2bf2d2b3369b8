"""Training FLOPs per token, split into what a stage really computes.

Matmul FLOPs count 2 per multiply-add. For each token:
- forward: 2 x (block weights + LM head) plus attention scores and mixing (2 x 2 x T x d per layer, halved by
  the causal mask);
- backward, only where gradients flow: every layer at or above the lowest one that trains (or carries LoRA)
  costs 2 x its weights (input gradients) plus 2 x attention; each trained matrix costs 2 x its size more
  (weight gradients). A frozen prefix run without autograd costs its forward only.
This is what lets a constructive stage be compared with a monolithic one at equal compute.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch


def _linear_params(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(
        m.weight.numel()
        for m in module.modules()
        if isinstance(m, torch.nn.Linear) and (m.weight.requires_grad or not trainable_only)
    )


def _has_trainable(module: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


@dataclass(frozen=True)
class StepFlops:
    forward_frozen: float
    forward_trainable: float
    backward: float

    @property
    def total(self) -> float:
        return self.forward_frozen + self.forward_trainable + self.backward


def flops_per_token(model: torch.nn.Module, context: int) -> StepFlops:
    """`model` is the LlamaForCausalLM (possibly with peft adapters injected)."""
    layers = list(model.model.layers)
    d = model.config.hidden_size
    attn = 2 * 2 * context * d / 2
    head = model.lm_head
    grad_from = (
        0
        if model.model.embed_tokens.weight.requires_grad
        else next((i for i, layer in enumerate(layers) if _has_trainable(layer)), len(layers))
    )
    frozen = sum(2 * _linear_params(layer) + attn for layer in layers[:grad_from])
    trainable = sum(2 * _linear_params(layer) + attn for layer in layers[grad_from:]) + 2 * head.weight.numel()
    backward = sum(2 * _linear_params(layer) + 2 * attn for layer in layers[grad_from:])
    backward += 2 * head.weight.numel() if grad_from < len(layers) else 0
    backward += 2 * sum(_linear_params(layer, trainable_only=True) for layer in layers)
    backward += 2 * _linear_params(head, trainable_only=True)
    return StepFlops(float(frozen), float(trainable), float(backward))


@functools.cache
def measured_peak_flops(device: torch.device, bf16: bool, n: int = 1024, reps: int = 10) -> float:
    """Matmul throughput of this device, the reference for MFU (CPUs publish no useful peak): the fastest of
    `reps` timed products, so a busy moment at start-up does not lower the peak. Measured once per process (a
    study trains dozens of runs in one)."""
    from growlm.precision import best_matmul_seconds

    return 2 * n**3 / best_matmul_seconds(torch.bfloat16 if bf16 else torch.float32, n, reps, device)
