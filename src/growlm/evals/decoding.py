"""Token-by-token decoding for generation tasks: greedy, or sampled with per-item seeds (the paper protocol).

Same model call and conventions as harness.py; the loop itself is growlm.decode.decode. Prompts of one token length
decode as a batch (no padding, so every token keeps its position); a batch runs until each row has hit end-of-text,
its stop string or its cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from growlm.decode import decode
from growlm.errors import GrowlmError
from growlm.evals.harness import encode, equal_length_batches
from growlm.evals.settings import EvalSettings


@dataclass(frozen=True)
class Generation:
    text: str  # decoded output, cut before the stop string
    new_tokens: int
    truncated_tokens: int  # prompt tokens cut from the left to fit the window


Sampler = Callable[[torch.Tensor, list[int], int], torch.Tensor]  # (logits B x V, prompt indices, step) -> ids


def greedy(logits: torch.Tensor, prompts: list[int], step: int) -> torch.Tensor:
    return logits.argmax(-1)


@dataclass(frozen=True)
class SeededSampler:
    """Samples from softmax(logits / temperature) by inverting its CDF at a uniform number fixed by
    (seed, prompt index, step), so a draw does not depend on batching or order."""

    seed: int
    temperature: float = 1.0

    def __call__(self, logits: torch.Tensor, prompts: list[int], step: int) -> torch.Tensor:
        cdf = (logits.double() / self.temperature).softmax(-1).cumsum(-1)
        uniform = torch.tensor([[self._uniform(p, step)] for p in prompts], dtype=torch.float64, device=cdf.device)
        return torch.searchsorted(cdf, uniform * cdf[:, -1:]).squeeze(1).clamp_max(logits.shape[-1] - 1)

    def _uniform(self, prompt: int, step: int) -> float:
        state = int(np.random.SeedSequence([self.seed, prompt, step]).generate_state(1, dtype=np.uint64)[0])
        return (state >> 11) * 2.0**-53


def _cut(text: str, stop: str | None) -> tuple[str, bool]:
    if stop and stop in text:
        return text[: text.index(stop)], True
    return text, False


def _generate_batch(
    model, tokenizer, prompts: list[list[int]], indices: list[int], caps: list[int], stop: str | None, sampler: Sampler
) -> list[tuple[str, int]]:
    def choose(logits: torch.Tensor, step: int) -> torch.Tensor:
        return sampler(logits, indices, step)

    def stopped(ids: list[int]) -> bool:
        return _cut(tokenizer.decode(ids), stop)[1]

    new: list[list[int]] = [[] for _ in prompts]
    for r, token in decode(model, prompts, caps, choose, tokenizer.eos_token_id, stopped if stop else None):
        new[r].append(token)
    return [(_cut(tokenizer.decode(ids), stop)[0], len(ids)) for ids in new]


def prompt_fits(model, tokenizer, prompts: Sequence[str], max_new_tokens: int | Sequence[int]) -> list[bool]:
    """Whether each prompt fits in the model's window before its generation cap. Tasks skip (and count) the prompts
    that do not, rather than generate after a prompt cut to a stub."""
    window = model.config.max_position_embeddings
    caps = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if any(cap >= window for cap in caps):
        raise GrowlmError(
            f"a generation cap of {max(caps)} tokens leaves no room for a prompt in the model's "
            f"{window}-token window; lower `max_new_tokens`"
        )
    return [len(encode(tokenizer, p)) <= window - cap for p, cap in zip(prompts, caps)]


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int | Sequence[int],
    stop: str | None = "\n",
    sampler: Sampler = greedy,
    batch_tokens: int = 2048,
    max_batch: int = 64,
    progress=None,
) -> list[Generation]:
    """Continue every prompt for at most max_new_tokens tokens (one cap for all, or one per prompt), ending early
    at end-of-text or the stop string (cut off, not returned).

    Prompts are cut from the left so prompt plus cap fit the window; prompts of one token length run as a batch,
    so batching never changes which tokens are produced.
    """
    window = model.config.max_position_embeddings
    caps = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if any(cap >= window for cap in caps):
        raise GrowlmError(
            f"a generation cap of {max(caps)} tokens leaves no room for a prompt in the model's "
            f"{window}-token window; lower `max_new_tokens`"
        )
    encoded = [encode(tokenizer, p) for p in prompts]
    if any(not ids for ids in encoded):
        raise GrowlmError("an evaluation prompt is empty; every prompt needs some text")
    kept = [ids[-(window - cap) :] for ids, cap in zip(encoded, caps)]
    lengths = [len(ids) for ids in kept]
    results: list[Generation | None] = [None] * len(kept)
    with torch.inference_mode():
        for batch in equal_length_batches(lengths, lambda b: len(b) * lengths[b[0]], batch_tokens, max_batch):
            outputs = _generate_batch(
                model, tokenizer, [kept[i] for i in batch], batch, [caps[i] for i in batch], stop, sampler
            )
            for i, (text, n_new) in zip(batch, outputs):
                results[i] = Generation(text, n_new, len(encoded[i]) - len(kept[i]))
            if progress is not None:
                progress.update(len(batch))
    return results  # type: ignore[return-value]


def generate_items(
    desc: str,
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int | Sequence[int],
    settings: EvalSettings,
    stop: str | None = "\n",
    sampler: Sampler = greedy,
) -> list[Generation]:
    """generate() with the batch limits of `settings` and a progress bar labelled `desc`."""
    with tqdm(total=len(prompts), desc=desc, unit="item", disable=not settings.progress) as bar:
        return generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens,
            stop=stop,
            sampler=sampler,
            batch_tokens=settings.batch_tokens,
            max_batch=settings.max_batch,
            progress=bar,
        )
