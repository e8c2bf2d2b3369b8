"""Text generation from a growlm model (plain or composed): greedy or sampled, KV-cached (growlm.decode), streamed.

Works with anything that follows the causal-LM call contract (docs/ARCHITECTURE.md, Contracts) and a tokenizer with
encode(text) -> ids and decode(ids) -> text. Sampling uses a CPU generator seeded with `seed`, so the same seed
gives the same text on any device for the same logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import torch

from growlm.decode import decode
from growlm.errors import GrowlmError
from growlm.loading import load_lm
from growlm.tokenizer.layout import EOS_ID


class IncrementalDecoder:
    """Turns a growing id sequence into text pieces.

    Byte-fallback tokens of an unfinished UTF-8 character decode to U+FFFD until the character is complete, so
    trailing U+FFFD is held back until a later token settles it (or until flush).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        stable = len(text.rstrip("\ufffd"))
        piece = text[self.emitted : stable]
        self.emitted = max(self.emitted, stable)
        return piece

    def flush(self) -> str:
        text = self.tokenizer.decode(self.ids)
        piece, self.emitted = text[self.emitted :], len(text)
        return piece


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Mask (to -inf) all but the top_k logits, then all beyond the smallest set holding top_p of the mass."""
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        mass_before = torch.cumsum(probs, -1) - probs
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))
        logits = torch.empty_like(logits).scatter(0, order, sorted_logits)
    return logits


def next_token(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator
) -> int:
    if temperature == 0:
        return int(torch.argmax(logits))
    logits = filter_logits(logits.float().cpu() / temperature, top_k, top_p)
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    if max_new_tokens < 0:
        raise GrowlmError(f"`max_new_tokens` {max_new_tokens} must be >= 0")
    if temperature < 0:
        raise GrowlmError(f"`temperature` {temperature} must be >= 0 (0 means greedy)")
    if top_k is not None and top_k < 0:
        raise GrowlmError(f"`top_k` {top_k} must be >= 0 (0 means no limit)")
    if top_p is not None and not 0 < top_p <= 1:
        raise GrowlmError(f"`top_p` {top_p} must be in (0, 1]")


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of text that could still grow into a stop string."""
    for k in range(min(len(text), max(map(len, stops), default=0) - 1), 0, -1):
        if any(s.startswith(text[-k:]) for s in stops):
            return k
    return 0


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _sampled_ids(
    model,
    prompt_ids: list[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int,
) -> Iterator[int]:
    context = model.config.max_position_embeddings
    if len(prompt_ids) >= context:
        raise GrowlmError(
            f"prompt is {len(prompt_ids)} tokens with the leading </s>; the model's context is {context}; shorten it"
        )
    generator = torch.Generator().manual_seed(seed)

    def choose(logits: torch.Tensor, step: int) -> list[int]:
        return [next_token(logits[0], temperature, top_k, top_p, generator)]

    cap = min(max_new_tokens, context - len(prompt_ids))
    for _, token in decode(model, [prompt_ids], [cap], choose, EOS_ID, attention_mask=False):
        yield token


def iter_generate(
    model,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stop: Sequence[str] | None = None,
) -> Iterator[str]:
    """Yield the continuation of `prompt` piece by piece as it is generated.

    Stops at end-of-text, after max_new_tokens, at the model's context length, or before the first stop string
    (which is not yielded). The prompt is read as the start of a document: it follows </s>.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    stops = [s for s in (stop or []) if s]
    model.eval()
    decoder = IncrementalDecoder(tokenizer)
    pending = ""
    prompt_ids = [EOS_ID, *tokenizer.encode(prompt)]  # training data puts </s> before every document
    for token in _sampled_ids(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, seed):
        pending += decoder.push(token)
        if (cut := _first_stop(pending, stops)) is not None:
            yield pending[:cut]
            return
        keep = _held_back(pending, stops)
        if len(pending) > keep:
            yield pending[: len(pending) - keep]
            pending = pending[len(pending) - keep :]
    pending += decoder.flush()
    cut = _first_stop(pending, stops)
    if pending[:cut]:
        yield pending[:cut]


def stream_from_folder(
    path: str | Path,
    prompt: str,
    device: str = "cpu",
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stop: Sequence[str] | None = None,
) -> Iterator[str]:
    """The continuation of `prompt` by the model folder `path` (plain or composed), piece by piece (iter_generate).
    The settings are checked and the model loaded now, so bad input fails before the first piece is asked for."""
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    model, tokenizer = load_lm(path, device)
    return iter_generate(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed, stop)


def generate(
    model,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stop: Sequence[str] | None = None,
) -> str:
    """The continuation of `prompt` (without the prompt); see iter_generate."""
    return "".join(iter_generate(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed, stop))
