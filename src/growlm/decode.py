"""The KV-cached decode loop shared by text generation (growlm.generation) and generation tasks (growlm.evals.decoding),
and the device a model runs on for inference.

decode() feeds a batch of equal-length prompts (no padding, so every token keeps its position), keeps the model's
cache, lets a callable choose every row's next token from the last logits, and feeds the chosen tokens back. A row
finishes at end-of-text (not kept), at its cap, or when `stopped` says so; a finished row still rides along in the
batch (its tokens are ignored) until every row has finished. Only the model call of docs/ARCHITECTURE.md (Contracts)
is used.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

Choose = Callable[[torch.Tensor, int], "torch.Tensor | Sequence[int]"]  # (last logits B x V, step) -> B token ids


def decode(
    model,
    prompts: Sequence[Sequence[int]],
    caps: Sequence[int],
    choose: Choose,
    eos_id: int,
    stopped: Callable[[list[int]], bool] | None = None,
    attention_mask: bool = True,
) -> Iterator[tuple[int, int]]:
    """Yield (row, token) for every token kept, step by step, rows in order within a step.

    `stopped(new_ids)` is asked after each kept token whether the row is done. With attention_mask=False the model
    is called without a mask (as growlm generate always has); otherwise with an all-ones mask.
    Grad mode is switched off around each model call only, so a consumer of this generator never inherits it.
    """
    device = model.device
    inputs = torch.tensor(prompts, device=device)
    length = inputs.shape[1]
    cache = None
    new: list[list[int]] = [[] for _ in prompts]
    done = [cap == 0 for cap in caps]
    for step in range(max(caps, default=0)):
        if all(done):
            return
        with torch.inference_mode():
            mask = torch.ones((len(new), length + step), dtype=torch.long, device=device) if attention_mask else None
            out = model(input_ids=inputs, attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1)
            tokens = torch.as_tensor(choose(out.logits[:, -1], step), device=device)
            inputs = tokens.unsqueeze(1)  # fed at the next step
        cache = out.cache
        for r, token in enumerate(tokens.tolist()):
            if done[r]:
                continue
            if token == eos_id:
                done[r] = True
                continue
            new[r].append(token)
            done[r] = len(new[r]) >= caps[r] or (stopped is not None and stopped(new[r]))
            yield r, token
