"""Study scales: the sizes every run of a study trains at (each study adds its token budgets and evaluation).

- smoke: a tiny model, a few hundred tokens per stage, a handful of evaluation items. Runs every code path of a
  study in well under a minute (the tests use it); its numbers mean nothing.
- cpu (default): the configs' own size (d_model 256, 4 heads, context 128, 16-px glyphs) with token budgets that
  fit 2 CPU cores, evaluated on fixed subsets of each task.
- paper: the paper's sizes (d_model 1024, 32 heads, context 1024, 32-px glyphs; the growth series d_model 4096
  with 64-px glyphs) and the full evaluation sets, for GPUs. The paper states no learning rates or batch sizes;
  ours are conventional starting points for these widths (override with --set).
"""

from __future__ import annotations

from dataclasses import dataclass

from growlm.study.evaluation import EvalPlan

SCALES = ("cpu", "paper", "smoke")

SMOKE = {
    "model.d_model": 32,
    "model.n_heads": 2,
    "model.context": 64,
    "tokenizer.ngrams": 20,
    "data.max_chars": 20_000,
    "train.batch_size": 4,
    "train.eval_every": 4,
    "train.eval_batches": 1,
    "train.checkpoint_every": 1000,
    "train.log_every": 1,
}
PAPER = {
    "model.d_model": 1024,
    "model.n_heads": 32,
    "model.context": 1024,
    "substrate.cell": 32,
    "data.max_chars": 0,
    "train.lr": 3e-4,
    "train.batch_size": 32,
    "train.eval_every": 250,
    "train.checkpoint_every": 500,
    "train.log_every": 10,
}
# The growth series (abs-bvv-1..6) is four times as wide: 64-px glyphs give d = 4096 without a lift.
PAPER_WIDE = {**PAPER, "model.d_model": 4096, "substrate.cell": 64, "train.lr": 1.5e-4}

# The token-id bit-code substrate at the configs' width, for the studies' binary arms.
BINARY = {"substrate.kind": "binary", "substrate.dim": 256}

SIZES: dict[str, dict[str, object]] = {"smoke": SMOKE, "cpu": {}, "paper": PAPER}


def stage_tokens(tokens: list[int]) -> dict[str, int]:
    """Overrides that set the tokens of stages 0, 1, ... (the plan must have that many stages)."""
    return {f"growth.stages.{k}.tokens": n for k, n in enumerate(tokens)}


@dataclass(frozen=True)
class StudyScale:
    """One study at one scale: config overrides (sizes, token budgets), its evaluation, its default seeds."""

    values: dict[str, object]
    plan: EvalPlan
    seeds: int = 1
    lrs: tuple[float, ...] = ()  # the learning-rate sweep of the studies that tune each arm
