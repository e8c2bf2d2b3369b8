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

from growlm.config import Patch, combine
from growlm.study.evaluation import EvalPlan

SMOKE: Patch = {
    "model": {"d_model": 32, "n_heads": 2, "context": 64},
    "tokenizer": {"ngrams": 20},
    "data": {"max_chars": 20_000},
    "train": {"batch_size": 4, "eval_every": 4, "eval_batches": 1, "checkpoint_every": 1000, "log_every": 1},
}
PAPER: Patch = {
    "model": {"d_model": 1024, "n_heads": 32, "context": 1024},
    "substrate": {"cell": 32},
    "data": {"max_chars": 0},
    "train": {"lr": 3e-4, "batch_size": 32, "eval_every": 250, "checkpoint_every": 500, "log_every": 10},
}
# The growth series (abs-bvv-1..6) is four times as wide: 64-px glyphs give d = 4096 without a lift.
PAPER_WIDE: Patch = combine(PAPER, {"model": {"d_model": 4096}, "substrate": {"cell": 64}, "train": {"lr": 1.5e-4}})

# The token-id bit-code substrate at the configs' width, for the studies' binary arms.
BINARY: Patch = {"substrate": {"kind": "binary", "dim": 256}}


def stage_tokens(tokens: list[int]) -> Patch:
    """A patch that sets the tokens of stages 0, 1, ... (the plan must have that many stages)."""
    return {"growth": {"stages": {k: {"tokens": n} for k, n in enumerate(tokens)}}}


def train(**values: object) -> Patch:
    """A patch of train.* settings: `train(lr=1e-3, seed=2)`."""
    return {"train": values}


@dataclass(frozen=True, kw_only=True)
class StudyScale:
    """One study at one scale: its config patch (sizes, token budgets), evaluation, default seeds, the rates its
    sweep tries, and what it costs (shown by `growlm study NAME --help`). A study that needs more facts per scale
    subclasses it (growth-operators' budgets, continual's stage lengths)."""

    patch: Patch
    about: str
    plan: EvalPlan | None = None
    seeds: int = 1
    lrs: tuple[float, ...] = ()  # the learning-rate sweep of the studies that tune each arm
