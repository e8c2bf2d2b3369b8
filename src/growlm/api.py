"""growlm's Python API: what the CLI verbs call, for notebooks and scripts.

import growlm
run = growlm.grow("configs/demo.toml", out="runs/demo", overrides=["train.lr=1e-3"])
model, tokenizer = growlm.load(run.stage_model())
print(growlm.generate(run.stage_model(), "ROMEO:", max_new_tokens=50))
scores = growlm.evaluate(run.stage_model(), "arc_easy,mmlu", limit=50)
growlm.compose([expert_a, expert_b], out="composed")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from growlm.loading import device_for


def grow(
    config=None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    force: bool = False,
    check_memory: bool = True,
    base: str | Path | None = None,
):
    """Train by a growth plan: `config` is a TOML path or a growlm.config.RunConfig (None with resume=True).
    `base`: a finished run whose stages are the config's first ones; only the later stages train (a branch).

    Returns a GrowResult: .run (the RunDir), .summaries (one train.records.StageSummary per stage), .stage_model(k).
    """
    from growlm.train.recipe import grow as run_recipe

    return run_recipe(config, out, list(overrides), resume=resume, force=force, check_memory=check_memory, base=base)


def export(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write a training checkpoint (RUN/checkpoints/step-...) as an exported model folder."""
    from growlm.train.export import export_checkpoint

    return export_checkpoint(Path(checkpoint), Path(out), force)


def load(path: str | Path, device: str = "auto"):
    """(model, tokenizer) of an exported or composed model folder."""
    from growlm.loading import load_lm

    return load_lm(path, device_for(device))


def evaluate(model: str | Path, tasks: str = "arc_easy", device: str = "auto", **settings: Any) -> dict:
    """Score a model folder on comma-separated tasks; `settings` are growlm.evals.settings.EvalSettings fields
    (limit, shots, protocol, ...). Returns the results payload `growlm eval` writes as JSON."""
    from growlm.evals.settings import EvalSettings
    from growlm.evals.tasks import evaluate as run_tasks
    from growlm.evals.tasks import parse_tasks

    chosen = EvalSettings(**{"progress": False, **settings})
    return run_tasks(Path(model), parse_tasks(tasks, chosen.protocol), chosen, device_for(device))


def generate(model: str | Path, prompt: str, device: str = "auto", **sampling: Any) -> str:
    """The continuation of `prompt`; `sampling`: max_new_tokens, temperature, top_k, top_p, seed, stop."""
    from growlm.generation import generate as continue_text

    lm, tokenizer = load(model, device)
    return continue_text(lm, tokenizer, prompt, **sampling)


def compose(
    experts: Sequence[str | Path],
    out: str | Path,
    mode: str = "mean_logits",
    weights: Sequence[float] | None = None,
    force: bool = False,
    copy: bool = False,
    calibrate_on: Sequence[str | Path] | None = None,
    calibrate_tokens: int = 16384,
    calibrate_steps: int = 40,
    device: str = "auto",
    switch_rate: float = 0.0,
) -> dict:
    """Write a composed model folder from expert folders; returns its composition.json content.

    mode: mean_logits (the paper), mean_probs, or posterior (each expert weighted by its posterior given the text
    so far; `weights` is then the prior and `switch_rate` the fixed-share rate, see docs/COMPOSITION.md)."""
    from growlm.composition.calibrate import calibrate_on_files
    from growlm.composition.folder import compose as write_composition

    def calibrate() -> dict:
        return calibrate_on_files(
            experts, calibrate_on, weights, mode, calibrate_tokens, calibrate_steps, device_for(device), switch_rate
        )

    return write_composition(
        experts, out, mode, weights, force, copy, switch_rate=switch_rate, calibrate=calibrate if calibrate_on else None
    )
