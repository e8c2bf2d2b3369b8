"""Post-merge calibration: learn only the per-expert mixing weights of a composition, experts frozen.

The weights are softmax-parameterised (always a convex mix) and fitted by Adam on next-token loss over a small set
of token windows. In the posterior mode they are the prior, fitted together with the fixed-share switch rate
(sigmoid-parameterised, started at the given rate or 1e-3); the experts' log-probabilities of the windows' tokens
are computed once, so every step costs only the mixing. With one free scalar per expert beyond the first (and
the rate), the in-sample loss reported here is close to what held-out text would show; evaluate the result with
`growlm eval` for the honest number.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from growlm.composition.mixing import ComposedModel, combine_logits
from growlm.composition.posterior import sequence_logprobs
from growlm.composition.record import Calibration, CalibrationSource
from growlm.errors import GrowlmError
from growlm.io.hashing import sha256_file

CALIBRATION_WINDOW = 256


def text_windows(token_ids: Sequence[int], window: int, max_tokens: int) -> list[torch.Tensor]:
    """Non-overlapping windows of `window` tokens from the start of a token stream, up to max_tokens in all."""
    ids = list(token_ids)[:max_tokens]
    windows = [torch.tensor(ids[i : i + window]) for i in range(0, len(ids) - window + 1, window)]
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
) -> Calibration:
    """Fit the mixing weights; returns the Calibration (learned weights, loss before and after in nats/token, ...).

    The model keeps its weights; pass the returned ones to growlm.composition.compose(calibration=...).
    """
    if not windows or any(len(w) < 2 for w in windows):
        raise GrowlmError("calibration needs at least one window of two or more tokens")
    if model.mode == "posterior":
        return calibrate_posterior(model, windows, steps, lr)
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
    after = mean_loss(model, windows, learned)
    tokens = sum(len(w) for w in windows)
    return Calibration(
        tuple(learned.tolist()), tuple(model.weights.tolist()), before, after, steps, lr, len(windows), tokens
    )


@torch.no_grad()
def expert_token_logprobs(model: ComposedModel, window: torch.Tensor) -> torch.Tensor:
    """Each expert's log-probability of window[1:] given what precedes it: (len(window) - 1) x K, float64."""
    window = window.to(model.device)
    logits, _ = model.expert_logits(window[None, :-1])
    return torch.stack([z[0].float().log_softmax(-1).gather(-1, window[1:, None])[:, 0].double() for z in logits], -1)


def calibrate_posterior(
    model: ComposedModel, windows: Sequence[torch.Tensor], steps: int = 40, lr: float = 0.1
) -> Calibration:
    """Fit the prior and the switch rate of a posterior-mode composition (full batch: every window each step)."""
    token_lp = [expert_token_logprobs(model, w)[None] for w in windows]
    tokens = sum(lp.shape[1] for lp in token_lp)
    prior = torch.nn.Parameter(torch.log(model.weights.double().clamp_min(1e-4)))
    rate = torch.nn.Parameter(torch.logit(torch.tensor(max(model.switch_rate, 1e-3), dtype=torch.float64)))

    def loss(log_prior: torch.Tensor, switch_rate: torch.Tensor | float) -> torch.Tensor:
        log_prior = torch.log_softmax(log_prior, 0)
        return -sum(sequence_logprobs(lp, log_prior, switch_rate).sum() for lp in token_lp) / tokens

    optimizer = torch.optim.Adam([prior, rate], lr=lr)
    with torch.no_grad():
        before = loss(torch.log(model.weights.double()), model.switch_rate).item()
    for _ in tqdm(range(steps), desc="calibrating prior and switch rate", unit="step"):
        optimizer.zero_grad()
        value = loss(prior, torch.sigmoid(rate))
        value.backward()
        optimizer.step()
    learned, switch_rate = torch.softmax(prior.detach(), 0), float(torch.sigmoid(rate.detach()))
    with torch.no_grad():
        after = loss(torch.log(learned), switch_rate).item()
    return Calibration(
        weights=tuple(learned.tolist()),
        initial_weights=tuple(model.weights.tolist()),
        loss_before=before,
        loss_after=after,
        steps=steps,
        lr=lr,
        windows=len(windows),
        tokens=sum(len(w) for w in windows),
        switch_rate=switch_rate,
        initial_switch_rate=model.switch_rate,
    )


def calibrate_on_files(
    experts: Sequence[str | Path],
    calibrate_on: Sequence[str | Path],
    weights: Sequence[float] | None,
    mode: str,
    calibrate_tokens: int = 16384,
    calibrate_steps: int = 40,
    device: str = "cpu",
    switch_rate: float = 0.0,
) -> Calibration:
    """Calibrate the composition of `experts` on `calibrate_tokens` tokens in all, an equal number from each UTF-8
    text file of `calibrate_on`, in `calibrate_steps` steps (the names of growlm.compose's parameters)."""
    from growlm.composition.folder import load_experts
    from growlm.tokenizer import load_tokenizer

    if calibrate_tokens <= 0 or calibrate_steps < 0:
        raise GrowlmError("`calibrate_tokens` must be > 0 and `calibrate_steps` >= 0")
    model = ComposedModel(load_experts(experts, device), weights, mode, switch_rate).to(device)
    tokenizer = load_tokenizer(experts[0])
    window = min(CALIBRATION_WINDOW, model.config.max_position_embeddings)
    windows, sources = [], []
    for file in map(Path, calibrate_on):
        if not file.is_file():
            raise GrowlmError(f"`calibrate_on` {file}: no such file; give UTF-8 text files")
        share = calibrate_tokens // len(calibrate_on)
        windows += text_windows(tokenizer.encode(file.read_text(encoding="utf-8")), window, share)
        sources.append(CalibrationSource(str(file), sha256_file(file)))
    return replace(calibrate(model, windows, steps=calibrate_steps), sources=tuple(sources))
