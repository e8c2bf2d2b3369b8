"""Context-adaptive mixing: each expert weighted by its posterior given the text so far.

Bayesian model averaging over the experts (Branch-Train-Merge's domain posterior): the next-token distribution is
p(x_t | x_<t) = sum_i w_i(t) p_i(x_t | x_<t) with w_i(t) proportional to prior_i * prod_{s<t} p_i(x_s | x_<s), so
the weights at a position use only the tokens up to and including it, never the token being predicted. With a
switch rate alpha > 0 it is the fixed-share forecaster (Herbster and Warmuth, 1998): after each Bayes update the
weights become (1 - alpha) * posterior + alpha * prior, so a text that changes language mid-way is followed.
Guarantees on every sequence of T predicted tokens (natural log, K experts, uniform prior; docs/COMPOSITION.md):
  alpha = 0:  loss(mixture) <= loss(best expert) + log K
  alpha > 0:  loss(mixture) <= loss(best sequence of experts with m switches) + log K + m log(K / alpha)
                               + (T - 1 - m) log(1 / (1 - alpha))

The running state (log-weights per row, and each expert's log-distribution for the next token, which the next
call's first token is scored with) travels in the PosteriorCache the composed model returns, beside one KV cache
per expert. Positions whose attention_mask is 0 (padding) leave the state untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from growlm.errors import GrowlmError


def check_switch_rate(rate: float) -> float:
    rate = float(rate)
    if not (math.isfinite(rate) and 0 <= rate < 1):
        raise GrowlmError(f"switch rate {rate} must be in [0, 1) (0: no switching, plain Bayesian averaging)")
    return rate


def observe(
    log_weights: torch.Tensor,
    log_prior: torch.Tensor,
    token_lp: torch.Tensor,
    valid: torch.Tensor,
    switch_rate: float | torch.Tensor,
) -> torch.Tensor:
    """Log-weights after each position (B x L x K), from those before the first (B x K).

    token_lp (B x L x K): log-probability of each position's token under each expert's prediction for it; valid
    (B x L): whether the position holds a token to learn from (not padding, and something predicted it).
    """
    token_lp = torch.where(valid[..., None], token_lp, torch.zeros((), dtype=token_lp.dtype, device=token_lp.device))
    if not torch.is_tensor(switch_rate) and switch_rate == 0:
        return torch.log_softmax(log_weights[:, None] + torch.cumsum(token_lp, 1), -1)
    rate = torch.as_tensor(switch_rate, dtype=token_lp.dtype, device=token_lp.device)
    keep, share = torch.log1p(-rate), torch.log(rate) + log_prior
    out, w = [], log_weights
    for t in range(token_lp.shape[1]):
        updated = torch.logaddexp(keep + torch.log_softmax(w + token_lp[:, t], -1), share)
        w = torch.where(valid[:, t, None], updated, w)
        out.append(w)
    return torch.stack(out, 1)


# Logits handled per step: on a CPU 1 MiB of float32, so each step's temporaries stay in cache; on a GPU the
# bandwidth is there and kernel launches are what costs, so whole tensors (up to 512 MiB) at once.
CHUNK_ELEMENTS = {"cpu": 1 << 18}
GPU_CHUNK_ELEMENTS = 1 << 27


def chunk_positions(vocab: int, device: torch.device | str = "cpu") -> int:
    """Positions per step of the vocabulary-wide passes (mix, log_normalizers) on `device`."""
    return max(1, CHUNK_ELEMENTS.get(torch.device(device).type, GPU_CHUNK_ELEMENTS) // vocab)


def mix(
    log_weights: torch.Tensor, expert_logits: Sequence[torch.Tensor], expert_lse: Sequence[torch.Tensor]
) -> torch.Tensor:
    """log sum_i w_i softmax(z_i), position by position: log_weights B x P x K, expert_logits K tensors of
    B x P x V, expert_lse their log-normalisers (B x P). Float32 out.

    Each term w_i p_i(v) = exp(z_i + log w_i - lse_i) is at most 1, so the sum is taken in probabilities (no
    overflow); a token whose mixture probability is below float32's smallest normal number (log-prob < -87.3)
    is floored there rather than sent to -inf. Worked through in chunks of positions so each step's temporaries
    stay in cache: at full vocabulary the logits are the largest tensors in play, and whole-tensor passes would
    cost more than the experts' forwards.
    """
    batch, positions, vocab = expert_logits[0].shape
    out = torch.empty((batch, positions, vocab), dtype=torch.float32, device=expert_logits[0].device)
    shift = [(log_weights[..., i] - lse).float() for i, lse in enumerate(expert_lse)]  # log w_i - lse_i
    tiny, step = torch.finfo(torch.float32).tiny, chunk_positions(vocab, out.device)
    for b in range(batch):
        for a in range(0, positions, step):
            acc = out[b, a : a + step]
            torch.add(expert_logits[0][b, a : a + step], shift[0][b, a : a + step, None], out=acc).exp_()
            for z, c in zip(expert_logits[1:], shift[1:]):
                acc.add_(torch.add(z[b, a : a + step], c[b, a : a + step, None]).exp_())
            acc.clamp_min_(tiny).log_()
    return out


def log_normalizers(logits: torch.Tensor) -> torch.Tensor:
    """logsumexp over the vocabulary (B x L from B x L x V), chunk by chunk (see mix)."""
    flat = logits.reshape(-1, logits.shape[-1])
    out = torch.empty(flat.shape[0], dtype=torch.float32, device=logits.device)
    step = chunk_positions(flat.shape[1], flat.device)
    for a in range(0, flat.shape[0], step):
        out[a : a + step] = flat[a : a + step].float().logsumexp(-1)
    return out.view(logits.shape[:-1])


def sequence_logprobs(
    token_lp: torch.Tensor, log_prior: torch.Tensor, switch_rate: float | torch.Tensor
) -> torch.Tensor:
    """The mixture's log-probability of every target (B x T) from the experts' (token_lp, B x T x K), each row a
    fresh sequence: the weights for target t are the prior updated with targets before t. Differentiable in
    log_prior and switch_rate (calibration fits them with it)."""
    batch = token_lp.shape[0]
    prior = log_prior.expand(batch, -1)
    valid = torch.ones(token_lp.shape[:2], dtype=torch.bool, device=token_lp.device)
    after = observe(prior, log_prior, token_lp, valid, switch_rate)
    before = torch.cat([prior[:, None], after[:, :-1]], 1)
    return torch.logsumexp(before + token_lp, -1)


@dataclass
class PosteriorCache:
    """What a posterior-mode composed model carries from one call to the next."""

    experts: tuple  # one KV cache per expert (None entries when called without use_cache)
    log_weights: torch.Tensor  # B x K float64: the weights for the next prediction
    pending: torch.Tensor  # B x K x V float32: each expert's log-distribution of the next token
    has_pending: torch.Tensor  # B bool: False for a row that has seen no token yet

    def batch_select_indices(self, rows: torch.Tensor) -> None:
        """Keep rows `rows` (repeats allowed), in place, as transformers' caches do."""
        for cache in self.experts:
            if cache is not None:
                cache.batch_select_indices(rows)
        self.log_weights = self.log_weights[rows]
        self.pending = self.pending[rows]
        self.has_pending = self.has_pending[rows]

    def get_seq_length(self, layer: int = 0) -> int:
        return self.experts[0].get_seq_length(layer) if self.experts[0] is not None else 0

    @property
    def weights(self) -> torch.Tensor:
        """Each row's current expert weights (B x K)."""
        return self.log_weights.exp()


def _predictors(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each position, the last real position before it in this call (-1: none), and each row's last real one."""
    length = real.shape[1]
    index = torch.where(real, torch.arange(length, device=real.device), -1)
    last = torch.cummax(index, 1).values
    before = torch.cat([torch.full_like(last[:, :1], -1), last[:, :-1]], 1)
    return before, last[:, -1]


def _expert_pass(
    logits: torch.Tensor, ids: torch.Tensor, before: torch.Tensor, last: torch.Tensor, pending: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One expert's (log-probs of this call's tokens B x L, log-normalisers B x L, next pending B x V)."""
    lse = log_normalizers(logits)
    rows = torch.arange(ids.shape[0], device=ids.device)[:, None]
    at = before.clamp_min(0)
    token_lp = (logits[rows, at, ids].float() - lse[rows, at]).double()
    if pending is not None:
        token_lp = torch.where(before >= 0, token_lp, pending.gather(-1, ids).double())
    end = last.clamp_min(0)
    new_pending = logits[rows[:, 0], end].float() - lse[rows[:, 0], end, None]
    if pending is not None:
        new_pending = torch.where((last >= 0)[:, None], new_pending, pending)
    return token_lp, lse, new_pending


@dataclass
class _Pass:
    """One posterior-mode call's experts' outputs and the state after it."""

    logits: list  # each expert's logits at every position, B x L x V
    lses: list  # their log-normalisers, B x L
    log_weights: torch.Tensor  # B x L x K float64: the weights for the prediction made at each position
    state: PosteriorCache


def _posterior_pass(
    experts: Sequence,
    log_prior: torch.Tensor,
    switch_rate: float,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    cache: PosteriorCache | None,
    use_cache: bool,
) -> _Pass:
    batch, length = input_ids.shape
    if cache is not None and not isinstance(cache, PosteriorCache):
        raise ValueError(f"a posterior-mode composed model takes its own PosteriorCache, got {type(cache).__name__}")
    real = (
        (attention_mask[:, -length:] != 0)
        if attention_mask is not None
        else torch.ones_like(input_ids, dtype=torch.bool)
    )
    before, last = _predictors(real)
    token_lps, lses, logits, pending, caches = [], [], [], [], []
    for i, expert in enumerate(experts):
        out = expert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=cache.experts[i] if cache is not None else None,
            use_cache=use_cache,
            logits_to_keep=0,
        )
        lp, lse, pend = _expert_pass(
            out.logits, input_ids, before, last, cache.pending[:, i] if cache is not None else None
        )
        token_lps.append(lp)
        lses.append(lse)
        logits.append(out.logits)
        pending.append(pend)
        caches.append(out.cache)
    has_pending = (
        cache.has_pending if cache is not None else torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    )
    start = cache.log_weights if cache is not None else log_prior.double().expand(batch, -1)
    valid = real & ((before >= 0) | has_pending[:, None])
    log_weights = observe(start, log_prior.double(), torch.stack(token_lps, -1), valid, switch_rate)
    state = PosteriorCache(
        tuple(caches) if use_cache else tuple(None for _ in experts),
        log_weights[:, -1],
        torch.stack(pending, 1),
        has_pending | real.any(1),
    )
    return _Pass(logits, lses, log_weights, state)


def posterior_forward(
    experts: Sequence,
    log_prior: torch.Tensor,
    switch_rate: float,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    cache: PosteriorCache | None,
    use_cache: bool,
    logits_to_keep: int | torch.Tensor,
) -> tuple[torch.Tensor, PosteriorCache]:
    """(mixture log-probs at the kept positions, the state after this call) for one composed-model call."""
    run = _posterior_pass(experts, log_prior, switch_rate, input_ids, attention_mask, cache, use_cache)
    keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
    mixed = mix(run.log_weights[:, keep], [z[:, keep] for z in run.logits], [lse[:, keep] for lse in run.lses])
    return mixed, run.state


def posterior_targets(
    experts: Sequence,
    log_prior: torch.Tensor,
    switch_rate: float,
    input_ids: torch.Tensor,
    targets: torch.Tensor,
    attention_mask: torch.Tensor | None,
    cache: PosteriorCache | None,
    use_cache: bool,
) -> tuple[torch.Tensor, PosteriorCache]:
    """(the mixture's log-probability of each position's target, B x L float64, the state after this call): the
    same values as posterior_forward's distribution at the targets, without building that distribution."""
    run = _posterior_pass(experts, log_prior, switch_rate, input_ids, attention_mask, cache, use_cache)
    return mixture_at(run.log_weights, run.logits, run.lses, targets), run.state


def mixture_at(
    log_weights: torch.Tensor,
    expert_logits: Sequence[torch.Tensor],
    expert_lse: Sequence[torch.Tensor],
    targets: torch.Tensor,
) -> torch.Tensor:
    """log sum_i w_i p_i(target) per position (B x L float64), from log_weights B x L x K and each expert's logits
    (B x L x V) and log-normalisers (B x L): K numbers per position instead of K x V."""
    at = torch.stack(
        [z.gather(-1, targets[..., None])[..., 0].float() - lse for z, lse in zip(expert_logits, expert_lse)], -1
    )
    return torch.logsumexp(log_weights.double() + at.double(), -1)
