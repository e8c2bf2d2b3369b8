"""Log-likelihood scoring and token-by-token decoding through the plain causal-LM call.

The model is only called as `model(input_ids=, attention_mask=, cache=, use_cache=, logits_to_keep=)`, which
plain Hugging Face causal LMs and growlm's composed models both accept.
Conventions follow lm-evaluation-harness 0.4 (HFLM._loglikelihood_tokens): text is encoded without special tokens;
a context's trailing whitespace moves to the front of its continuation; the continuation's tokens are
encode(context + continuation) minus the first len(encode(context)) tokens. Each (context, continuation) pair is
fitted to the window on its own: the model reads the last window + 1 tokens of context + continuation minus the
last one, so a long context is cut from the left by a different amount for each choice. A request with a
continuation longer than the window cannot be scored: it is skipped (None), never fatal.

Speed without changing results: a context is run once and every continuation of it is scored against its cache
(the continuations' first tokens come straight from the context's last logits). Requests whose contexts have the
same token length share one forward pass, so no context is ever padded and every token keeps its position;
continuations are padded on the right only (which causal attention never lets earlier tokens see), in groups of
similar length so little of the vocabulary projection is spent on padding.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

from growlm.errors import GrowlmError

PAD_FILLER = 0  # any valid id: filler tokens sit after every real token and are masked out


@dataclass(frozen=True)
class ChoiceRequest:
    """One context and the continuations to score after it."""

    context: str
    continuations: tuple[str, ...]


@dataclass(frozen=True)
class ChoiceScores:
    loglikelihoods: tuple[float, ...]  # summed log-probability of each continuation's tokens, natural log
    continuation_tokens: tuple[int, ...]
    context_tokens: tuple[int, ...]  # context tokens the model saw, per continuation
    truncated_tokens: tuple[int, ...]  # context tokens cut from the left to fit the window, per continuation

    @property
    def truncated(self) -> bool:
        return any(self.truncated_tokens)


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's _encode_pair."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    context_ids = encode(tokenizer, context)
    return context_ids, encode(tokenizer, context + continuation)[len(context_ids) :]


@dataclass(frozen=True)
class _Prepared:
    """A context (already cut) and the continuations scored after it: the choices of one request that see the
    same context share one unit."""

    context: list[int]
    continuations: list[list[int]]
    request: int
    choices: list[int]  # indices of the continuations in the request
    truncated: int  # context tokens cut


def _prepare(tokenizer, request: ChoiceRequest, index: int, window: int) -> list[_Prepared] | None:
    """The request's units, or None when a continuation alone is longer than the window."""
    pairs = [encode_pair(tokenizer, request.context, c) for c in request.continuations]
    context = pairs[0][0]
    continuations = [cont for _, cont in pairs]
    if not context or any(not cont for cont in continuations):
        raise GrowlmError(
            f"empty context or continuation in request {request.context[-60:]!r}; every request "
            "needs text on both sides"
        )
    if max(len(c) for c in continuations) > window:
        return None
    # The model reads (context + continuation)[-(window + 1):][:-1]: the context keeps at most
    # window + 1 - len(continuation) tokens, for each continuation on its own.
    by_keep: dict[int, list[int]] = {}
    for j, cont in enumerate(continuations):
        by_keep.setdefault(min(len(context), window + 1 - len(cont)), []).append(j)
    return [
        _Prepared(
            context[len(context) - keep :], [continuations[j] for j in choices], index, choices, len(context) - keep
        )
        for keep, choices in by_keep.items()
    ]


def equal_length_batches(
    lengths: Sequence[int], cost: Callable[[list[int]], int], budget: int, max_batch: int
) -> Iterable[list[int]]:
    """Indices grouped by equal length (shortest first), each group within the token budget (one item always fits)."""
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batch and (lengths[i] != lengths[batch[0]] or len(batch) >= max_batch or cost(batch + [i]) > budget):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _select_rows(cache, rows: torch.Tensor):
    """Cache rows `rows` (repeats allowed); a composed model's cache is a tuple of per-expert caches."""
    if isinstance(cache, (tuple, list)):
        return type(cache)(_select_rows(c, rows) for c in cache)
    cache.batch_select_indices(rows)
    return cache


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def target_logprobs(
    model,
    input_ids: torch.Tensor,
    targets: torch.Tensor,
    attention_mask: torch.Tensor,
    cache=None,
    use_cache: bool = False,
) -> tuple[torch.Tensor, object]:
    """(log p(target at each position) B x L, the cache). A model with `token_logprobs` (a composed model) scores
    the targets itself, without building its whole next-token distribution."""
    own = getattr(model, "token_logprobs", None)
    if own is not None:
        return own(input_ids, targets, attention_mask=attention_mask, cache=cache, use_cache=use_cache)
    out = model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache)
    return _token_logprobs(out.logits, targets), out.cache


def _width_groups(widths: list[int], budget: int) -> list[list[int]]:
    """Row indices grouped by similar width, widest first: padding takes at most half of a row (more forward
    calls would cost more than the padding saves), and a group's padded size stays within the budget (a single
    row always fits)."""
    groups: list[list[int]] = []
    for r in sorted(range(len(widths)), key=lambda r: -widths[r]):
        widest = widths[groups[-1][0]] if groups else 0
        if not groups or (len(groups[-1]) + 1) * widest > budget or 2 * widths[r] < widest:
            groups.append([])
        groups[-1].append(r)
    return groups


def _continuation_logprobs(model, cache, n_context: int, rows: list[tuple[int, list[int]]]) -> list[list[float]]:
    """Log-probabilities of cont[1:] for rows (context batch row, continuation), fed after the cached contexts."""
    device = model.device
    width = max(len(cont) - 1 for _, cont in rows)
    inputs = torch.full((len(rows), width), PAD_FILLER, dtype=torch.long)
    targets = torch.full((len(rows), width), PAD_FILLER, dtype=torch.long)
    mask = torch.zeros((len(rows), n_context + width), dtype=torch.long)
    mask[:, :n_context] = 1
    for r, (_, cont) in enumerate(rows):
        inputs[r, : len(cont) - 1] = torch.tensor(cont[:-1])
        targets[r, : len(cont) - 1] = torch.tensor(cont[1:])
        mask[r, n_context : n_context + len(cont) - 1] = 1
    cache = _select_rows(cache, torch.tensor([b for b, _ in rows], device=device))
    lps, _ = target_logprobs(model, inputs.to(device), targets.to(device), mask.to(device), cache, use_cache=True)
    lps = lps.cpu().tolist()
    return [lp[: len(cont) - 1] for lp, (_, cont) in zip(lps, rows)]


def _score_batch(model, items: list[_Prepared], budget: int) -> list[list[float]]:
    """Summed log-likelihood of every continuation of `items`, whose contexts all have the same length."""
    device = model.device
    context = torch.tensor([it.context for it in items], device=device)
    # Only the last context position's logits are needed: logits_to_keep=1 skips the vocabulary projection of the
    # rest, which dominates the cost for models with a large vocabulary and few layers.
    out = model(input_ids=context, attention_mask=torch.ones_like(context), use_cache=True, logits_to_keep=1)
    last = out.logits[:, -1]
    token_lps = [
        [
            [lp]
            for lp in _token_logprobs(
                last[b].expand(len(it.continuations), -1), torch.tensor([c[0] for c in it.continuations], device=device)
            ).tolist()
        ]
        for b, it in enumerate(items)
    ]
    rows = [(b, j) for b, it in enumerate(items) for j, c in enumerate(it.continuations) if len(c) > 1]
    groups = _width_groups([len(items[b].continuations[j]) - 1 for b, j in rows], budget)
    for k, group in enumerate(groups):
        # Row selection replaces the cache's contents, so every group but the last works on a copy.
        cache = out.cache if k == len(groups) - 1 else copy.deepcopy(out.cache)
        selected = [rows[r] for r in group]
        lps = _continuation_logprobs(
            model, cache, context.shape[1], [(b, items[b].continuations[j]) for b, j in selected]
        )
        for (b, j), lp in zip(selected, lps):
            token_lps[b][j] += lp
    return [[math.fsum(lps) for lps in item] for item in token_lps]


def _assemble(units: list[_Prepared], lls: dict[int, list[float]]) -> ChoiceScores:
    """One request's scores, in choice order, from its units' log-likelihoods (keyed by id(unit))."""
    out = {
        j: (ll, len(cont), len(u.context), u.truncated)
        for u in units
        for j, cont, ll in zip(u.choices, u.continuations, lls[id(u)])
    }
    ll, tokens, seen, cut = zip(*(out[j] for j in sorted(out)))
    return ChoiceScores(tuple(ll), tuple(tokens), tuple(seen), tuple(cut))


def score_choices(
    model, tokenizer, requests: Sequence[ChoiceRequest], batch_tokens: int = 2048, max_batch: int = 64, progress=None
) -> list[ChoiceScores | None]:
    """Log-likelihood of every continuation of every request, or None for a request that cannot be scored (a
    continuation longer than the window); results do not depend on the batch settings beyond rounding.

    `batch_tokens` bounds the tokens of one forward pass (and so its logits, tokens x vocabulary floats);
    `progress` gets .update(n) as requests finish.
    """
    window = model.config.max_position_embeddings
    per_request = [_prepare(tokenizer, r, i, window) for i, r in enumerate(requests)]
    units = [u for us in per_request if us for u in us]
    left = [len(us) if us else 0 for us in per_request]
    if progress is not None:
        progress.update(left.count(0))
    lls: dict[int, list[float]] = {}

    def cost(batch: list[int]) -> int:
        items = [units[i] for i in batch]
        return max(len(items) * len(items[0].context), sum(len(c) - 1 for it in items for c in it.continuations))

    with torch.inference_mode():
        for batch in equal_length_batches([len(u.context) for u in units], cost, batch_tokens, max_batch):
            for i, scores in zip(batch, _score_batch(model, [units[i] for i in batch], batch_tokens)):
                lls[id(units[i])] = scores
                left[units[i].request] -= 1
                if progress is not None and not left[units[i].request]:
                    progress.update(1)
    return [None if us is None else _assemble(us, lls) for us in per_request]


def rolling_windows(tokens: list[int], prefix: int, window: int) -> list[list[int]]:
    """Pieces of [prefix] + tokens, each at most window + 1 long and overlapping the next by one token: fed
    piece[:-1], a piece predicts piece[1:], so every token is predicted exactly once (lm-evaluation-harness's
    rolling log-likelihood with one token of context per window)."""
    sequence = [prefix, *tokens]
    return [sequence[a : a + window + 1] for a in range(0, len(tokens), window)]


def sequence_loglikelihoods(
    model, sequences: Sequence[list[int]], batch_tokens: int = 2048, max_batch: int = 64, progress=None
) -> list[float]:
    """Summed log-probability of sequence[1:] given its prefix, for each sequence (at most window + 1 tokens)."""
    lengths = [len(s) for s in sequences]
    results = [0.0] * len(sequences)
    with torch.inference_mode():
        for batch in equal_length_batches(lengths, lambda b: len(b) * lengths[b[0]], batch_tokens, max_batch):
            ids = torch.tensor([sequences[i] for i in batch], device=model.device)
            lps, _ = target_logprobs(model, ids[:, :-1], ids[:, 1:], torch.ones_like(ids[:, :-1]))
            for i, lps in zip(batch, lps.cpu().tolist()):
                results[i] = math.fsum(lps)
            if progress is not None:
                progress.update(len(batch))
    return results
