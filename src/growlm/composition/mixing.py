"""Mixing experts grown on one frozen substrate.

Static modes average the experts' next-token outputs with fixed weights: mean_logits (the paper) or mean_probs.
The posterior mode weights each expert by its posterior given the text so far, optionally with fixed-share
switching (growlm.composition.posterior); its `weights` are then the prior.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from growlm.composition.posterior import (
    check_switch_rate,
    chunk_positions,
    log_normalizers,
    mix,
    mixture_at,
    posterior_forward,
    posterior_targets,
)
from growlm.errors import GrowlmError

MODES = ("mean_logits", "mean_probs", "posterior")
STATIC_MODES = ("mean_logits", "mean_probs")


def check_mode(mode: str, switch_rate: float) -> float:
    """The one check of a composition's mode and switch rate (a model's, and a folder's before it is written);
    returns the switch rate as a float."""
    if mode not in MODES:
        raise GrowlmError(f"unknown composition mode {mode!r}; use `mode` {' | '.join(MODES)}")
    rate = check_switch_rate(switch_rate)
    if rate and mode != "posterior":
        raise GrowlmError(
            f"a switch rate (`switch_rate`) applies to the posterior mode only, not {mode}; drop it or change the mode"
        )
    return rate


def combine_logits(expert_logits: Sequence[torch.Tensor], weights: torch.Tensor, mode: str) -> torch.Tensor:
    """Weighted mean of logits, or log of the weighted mean of probabilities; weights sum to 1. Float32 out.

    Accumulated expert by expert: at full vocabulary the logits are the largest tensors in play.
    """
    if mode not in STATIC_MODES:
        raise GrowlmError(f"combine_logits mixes with fixed weights ({', '.join(STATIC_MODES)}), not {mode!r}")
    weights = weights.float()
    if mode == "mean_logits":
        return sum(w * z.float() for w, z in zip(weights, expert_logits))
    # log sum_i w_i p_i in log space; a zero weight adds log 0 = -inf, which logaddexp ignores.
    terms = (torch.log(w) + torch.log_softmax(z.float(), dim=-1) for w, z in zip(weights, expert_logits))
    return functools.reduce(torch.logaddexp, terms)


def fast_combine(expert_logits: Sequence[torch.Tensor], weights: torch.Tensor, mode: str) -> torch.Tensor:
    """combine_logits without autograd, in cache-sized chunks of positions (same values; see posterior.mix)."""
    if mode == "mean_probs":
        lses = [log_normalizers(z) for z in expert_logits]
        log_weights = torch.log(weights.float()).expand(*lses[0].shape, -1)
        return mix(log_weights, expert_logits, lses)
    if mode not in STATIC_MODES:
        raise GrowlmError(f"fast_combine mixes with fixed weights ({', '.join(STATIC_MODES)}), not {mode!r}")
    flat = [z.reshape(-1, z.shape[-1]) for z in expert_logits]
    out = torch.empty(flat[0].shape, dtype=torch.float32, device=flat[0].device)
    step, w = chunk_positions(flat[0].shape[1], flat[0].device), weights.float().tolist()
    for a in range(0, flat[0].shape[0], step):
        acc = out[a : a + step]
        torch.mul(flat[0][a : a + step], w[0], out=acc)
        for z, wi in zip(flat[1:], w[1:]):
            acc.add_(z[a : a + step], alpha=wi)
    return out.view(expert_logits[0].shape)


@dataclass
class ComposedConfig:
    vocab_size: int
    max_position_embeddings: int
    mode: str
    num_experts: int
    expert_depths: list[int]
    switch_rate: float = 0.0


class ComposedModel(nn.Module):
    """Frozen experts behind the causal-LM call signature growlm's evaluation and generation use.

    In the static modes its `cache` is a tuple with one cache per expert, in expert order; in the posterior mode a
    growlm.composition.posterior.PosteriorCache (the per-expert caches plus each row's running posterior).
    """

    def __init__(
        self, experts: Sequence[nn.Module], weights: Sequence[float] | None, mode: str, switch_rate: float = 0.0
    ):
        super().__init__()
        self.switch_rate = check_mode(mode, switch_rate)
        self.experts = nn.ModuleList(experts)
        self.mode = mode
        self.register_buffer("weights", torch.tensor(normalize_weights(weights, len(experts)), dtype=torch.float32))
        self.requires_grad_(False)
        configs = [e.config for e in experts]
        vocab = {c.vocab_size for c in configs}
        if len(vocab) != 1:
            raise GrowlmError(f"experts have different vocabulary sizes {sorted(vocab)}; compose experts of one vocab")
        self.config = ComposedConfig(
            vocab_size=vocab.pop(),
            max_position_embeddings=min(c.max_position_embeddings for c in configs),
            mode=mode,
            num_experts=len(experts),
            expert_depths=[c.num_hidden_layers for c in configs],
            switch_rate=self.switch_rate,
        )

    @property
    def device(self) -> torch.device:
        return self.weights.device

    def expert_logits(self, input_ids, attention_mask=None, cache=None, use_cache=False, logits_to_keep=0):
        """Each expert's output on the same input; returns (logits list, per-expert caches or None)."""
        caches = cache if cache is not None else [None] * len(self.experts)
        if len(caches) != len(self.experts):
            raise ValueError(f"cache holds {len(caches)} caches for {len(self.experts)} experts")
        outs = [
            expert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                cache=past,
                use_cache=use_cache,
                logits_to_keep=logits_to_keep,
            )
            for expert, past in zip(self.experts, caches)
        ]
        return [o.logits for o in outs], (tuple(o.cache for o in outs) if use_cache else None)

    def forward(self, input_ids, attention_mask=None, cache=None, use_cache=False, logits_to_keep=0):
        if self.mode == "posterior":
            with torch.no_grad():
                mixed, state = posterior_forward(
                    self.experts,
                    torch.log(self.weights),
                    self.switch_rate,
                    input_ids,
                    attention_mask,
                    cache,
                    use_cache,
                    logits_to_keep,
                )
            return CausalLMOutputWithPast(logits=mixed, cache=state)
        logits, caches = self.expert_logits(input_ids, attention_mask, cache, use_cache, logits_to_keep)
        with torch.no_grad():
            return CausalLMOutputWithPast(logits=fast_combine(logits, self.weights, self.mode), cache=caches)

    @torch.no_grad()
    def token_logprobs(self, input_ids, targets, attention_mask=None, cache=None, use_cache=False):
        """(log-probability of each position's target B x L, the cache): forward's log-softmax at `targets`, but
        the probability-mixing modes mix K numbers per position instead of K vocabulary-wide distributions, so
        scoring costs what the experts' own scoring does."""
        if self.mode == "posterior":
            return posterior_targets(
                self.experts,
                torch.log(self.weights),
                self.switch_rate,
                input_ids,
                targets,
                attention_mask,
                cache,
                use_cache,
            )
        logits, caches = self.expert_logits(input_ids, attention_mask, cache, use_cache)
        if self.mode == "mean_probs":
            lses = [log_normalizers(z) for z in logits]
            return mixture_at(torch.log(self.weights).expand(*lses[0].shape, -1), logits, lses, targets), caches
        mixed = fast_combine(logits, self.weights, self.mode)
        return mixed.gather(-1, targets[..., None])[..., 0] - log_normalizers(mixed), caches


def normalize_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise GrowlmError(f"got {len(weights)} weights for {n} experts; give one weight per expert")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise GrowlmError(f"weights {weights} must be finite and non-negative")
    total = sum(weights)
    if total <= 0:
        raise GrowlmError("weights are all zero; give at least one expert a positive weight")
    return [w / total for w in weights]
