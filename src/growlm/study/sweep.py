"""Fair arms: each arm's peak learning rate chosen by a small recorded sweep, then its seeds trained at that rate.

The sweep trains seed 0 of the arm at every rate of the grid and keeps the rate with the lowest final validation
loss (the first on a tie). Seed 0 at the chosen rate is the same run, reused, as the arm's seed 0 of the comparison:
every arm is tuned the same way on the same seed, so whatever that selection adds favours no arm in particular.
Runs live in STUDY/runs/ARM/lr-RATE/seed-S.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from growlm.analysis.tables import Table
from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.study.runs import RunSpec, ensure_run, say

SWEEP_SEED = 0


@dataclass(frozen=True)
class ArmRuns:
    name: str
    lr: float  # the chosen peak learning rate
    sweep: dict[float, float]  # rate -> seed 0's final validation loss
    runs: list[RunSpec]  # one per seed, at the chosen rate


def refuse_lr_override(sets: Sequence[str], study: str) -> None:
    if any(s.split("=", 1)[0].strip() in ("train.lr", "train.warmup_frac") for s in sets):
        raise GrowlmError(
            f"--set train.lr / train.warmup_frac: the {study} study chooses each arm's learning rate by a "
            "sweep and gives every stage the same warm-up in tokens; drop that --set"
        )


def _spec(root: Path, arm: str, lr: float, seed: int, config_for: Callable[[float, int], RunConfig]) -> RunSpec:
    label = f"{arm}/lr-{lr:g}/seed-{seed}"
    return RunSpec(label, root / "runs" / arm / f"lr-{lr:g}" / f"seed-{seed}", config_for(lr, seed))


def tuned_arm(
    root: Path, arm: str, lrs: Sequence[float], seeds: Sequence[int], config_for: Callable[[float, int], RunConfig]
) -> ArmRuns:
    """Sweep `lrs` on seed 0, then train every seed at the best rate (config_for(lr, seed) gives each run)."""
    sweep = {}
    for lr in lrs:
        spec = _spec(root, arm, lr, SWEEP_SEED, config_for)
        ensure_run(spec, root / "configs")
        sweep[lr] = spec.summary()[-1].val_loss
    best = min(lrs, key=lambda lr: sweep[lr])
    say(
        f"{arm}: learning rate {best:g} (seed {SWEEP_SEED} final val loss "
        + ", ".join(f"{lr:g}: {loss:.4f}" for lr, loss in sweep.items())
        + ")"
    )
    runs = [_spec(root, arm, best, s, config_for) for s in seeds]
    for spec in runs:
        ensure_run(spec, root / "configs")
    return ArmRuns(arm, best, sweep, runs)


def sweep_table(arms: dict[str, ArmRuns], lrs: tuple[float, ...]) -> Table:
    edges = (lrs[0], lrs[-1]) if len(lrs) > 1 else ()
    rows = [
        [name, *(runs.sweep[lr] for lr in lrs), f"{runs.lr:g}" + (" (grid edge)" if runs.lr in edges else "")]
        for name, runs in arms.items()
    ]
    return Table(
        "Learning-rate sweep (seed 0)",
        ["arm", *(f"val loss at LR {lr:g}" for lr in lrs), "chosen"],
        rows,
        "Final validation loss (nats/token) of seed 0 at each peak learning rate; the lowest is chosen. "
        '"grid edge": the best rate is the smallest or largest tried, so a rate outside the grid may be '
        "better still.",
    )
