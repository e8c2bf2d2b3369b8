"""Post-merge calibration: learn only the per-expert mixing weights of a composition, experts frozen.

The weights are softmax-parameterised (always a convex mix) and fitted by Adam on next-token loss over a small set
of token windows. With one free scalar per expert beyond the first, the in-sample loss reported here is close to
what held-out text would show; evaluate the result with `growlm eval` for the honest number.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from growlm.compose import ComposedModel, combine_logits
from growlm.errors import GrowlmError


def text_windows(token_ids: Sequence[int], window: int, max_tokens: int) -> list[torch.Tensor]:
    """Non-overlapping windows of `window` tokens from the start of a token stream, up to max_tokens in all."""
    ids = list(token_ids)[:max_tokens]
    windows = [torch.tensor(ids[i:i + window]) for i in range(0, len(ids) - window + 1, window)]
    if not windows:
        raise GrowlmError(f"calibration text has {len(ids)} tokens, fewer than one window of {window}; give more text")
    return windows


def _window_loss(model: ComposedModel, window: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Summed next-token loss of one window under the given mixing weights (gradients reach the weights only)."""
    window = window.to(model.device)
    with torch.no_grad():
        logits, _ = model.expert_logits(window[None, :-1])
    mixed = combine_logits(logits, weights, model.mode)
    return F.cross_entropy(mixed[0], window[1:], reduction="sum")


@torch.no_grad()
def mean_loss(model: ComposedModel, windows: Sequence[torch.Tensor], weights: torch.Tensor) -> float:
    total = sum(_window_loss(model, w, weights).item() for w in windows)
    return total / sum(len(w) - 1 for w in windows)


def calibrate(
    model: ComposedModel,
    windows: Sequence[torch.Tensor],
    steps: int = 40,
    lr: float = 0.1,
    batch_size: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the mixing weights; returns {"weights", "loss_before", "loss_after", "steps", "tokens", ...} (nats/token).

    The model keeps its weights; pass the returned ones to growlm.compose.compose(calibration=...).
    """
    if not windows or any(len(w) < 2 for w in windows):
        raise GrowlmError("calibration needs at least one window of two or more tokens")
    start = model.weights.clamp_min(1e-4)
    logits_param = torch.nn.Parameter(torch.log(start / start.sum()))
    optimizer = torch.optim.Adam([logits_param], lr=lr)
    order = random.Random(seed)
    before = mean_loss(model, windows, model.weights)
    for _ in tqdm(range(steps), desc="calibrating weights", unit="step"):
        batch = order.sample(list(windows), min(batch_size, len(windows)))
        optimizer.zero_grad()
        weights = torch.softmax(logits_param, 0)
        loss = sum(_window_loss(model, w, weights) for w in batch) / sum(len(w) - 1 for w in batch)
        loss.backward()
        optimizer.step()
    learned = torch.softmax(logits_param.detach(), 0)
    return {
        "weights": learned.tolist(),
        "initial_weights": model.weights.tolist(),
        "loss_before": before,
        "loss_after": mean_loss(model, windows, learned),
        "steps": steps,
        "lr": lr,
        "windows": len(windows),
        "tokens": sum(len(w) for w in windows),
    }
