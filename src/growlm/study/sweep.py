"""Fair arms: each arm's peak learning rate chosen by a small recorded sweep, then its seeds trained at that rate.

The sweep trains one seed of the arm at every rate of the grid and keeps the rate with the lowest final validation
loss (the first on a tie). By default that is seed 0, and seed 0 at the chosen rate is the same run, reused, as the
arm's seed 0 of the comparison: every arm is tuned the same way on the same seed, so whatever that selection adds
favours no arm in particular. A study may sweep on a held-out seed instead (growth-operators: HELD_OUT_SEED), so
that no evaluated run took part in choosing its own rate. Runs live in STUDY/runs/[GROUP/]ARM/lr-RATE/seed-S.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from growlm.analysis.tables import Table
from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.study.runs import RunSpec, ensure_run, say

SWEEP_SEED = 0
HELD_OUT_SEED = 1000  # a sweep seed outside every study's evaluation seeds (0, 1, ...)


@dataclass(frozen=True)
class ArmRuns:
    name: str
    lr: float  # the chosen peak learning rate
    sweep: dict[float, float]  # rate -> the sweep seed's final validation loss
    runs: list[RunSpec]  # one per evaluation seed, at the chosen rate
    sweep_seed: int = SWEEP_SEED


def refuse_lr_override(sets: Sequence[str], study: str) -> None:
    if any(s.split("=", 1)[0].strip() in ("train.lr", "train.warmup_frac") for s in sets):
        raise GrowlmError(
            f"`overrides` train.lr / train.warmup_frac: the {study} study chooses each arm's learning rate by a "
            "sweep and gives every stage the same warm-up in tokens; drop that override"
        )


def _spec(
    root: Path, arm: str, lr: float, seed: int, config_for: Callable[[float, int], RunConfig], base: RunSpec | None
) -> RunSpec:
    label = f"{arm}/lr-{lr:g}/seed-{seed}"
    return RunSpec(label, root / "runs" / arm / f"lr-{lr:g}" / f"seed-{seed}", config_for(lr, seed), base)


def tuned_arm(
    root: Path,
    arm: str,
    lrs: Sequence[float],
    seeds: Sequence[int],
    config_for: Callable[[float, int], RunConfig],
    sweep_seed: int = SWEEP_SEED,
    bases: Mapping[int, RunSpec] | None = None,
    extend: int = 0,
) -> ArmRuns:
    """Sweep `lrs` on `sweep_seed`, then train every seed at the best rate (config_for(lr, seed) gives each run).
    `arm` may be a path (GROUP/ARM): the runs then live in STUDY/runs/GROUP/ARM. `bases`: seed -> the finished run
    each of the arm's runs of that seed continues (a branch), if they continue one. `extend`: while the best rate
    is the smallest or largest tried, try the next one past it (at the grid's own ratio), at most this many times."""
    bases = bases or {}
    sweep = {}

    def tried(lr: float) -> None:
        spec = _spec(root, arm, lr, sweep_seed, config_for, bases.get(sweep_seed))
        ensure_run(spec, root / "configs")
        sweep[lr] = spec.summary()[-1].val_loss

    for lr in lrs:
        tried(lr)
    best = min(sweep, key=sweep.get)
    for _ in range(extend):
        beyond = past_edge(sorted(sweep), best)
        if beyond is None:
            break
        tried(beyond)
        best = min(sweep, key=sweep.get)
    say(
        f"{arm}: learning rate {best:g} (seed {sweep_seed} final val loss "
        + ", ".join(f"{lr:g}: {loss:.4f}" for lr, loss in sweep.items())
        + ")"
    )
    runs = [_spec(root, arm, best, s, config_for, bases.get(s)) for s in seeds]
    for spec in runs:
        ensure_run(spec, root / "configs")
    return ArmRuns(arm, best, sweep, runs, sweep_seed)


def past_edge(rates: list[float], best: float) -> float | None:
    """The next rate past `best` when it is the smallest or largest of the sorted `rates` (more than one), stepping
    by the ratio between it and its neighbour; None when `best` lies inside."""
    if len(rates) < 2 or best not in (rates[0], rates[-1]):
        return None
    neighbour = rates[1] if best == rates[0] else rates[-2]
    return float(f"{best * best / neighbour:.6g}")  # 6e-3 * 2 is 0.012000000000000002; runs are named by :g


def sweep_table(arms: dict[str, ArmRuns], lrs: tuple[float, ...], title: str = "") -> Table:
    rows = []
    for name, runs in arms.items():  # an arm may have tried only some of the rates (a ladder's larger budgets)
        tried = sorted(runs.sweep)
        edge = len(tried) > 1 and runs.lr in (tried[0], tried[-1])
        rows.append([name, *(runs.sweep.get(lr) for lr in lrs), f"{runs.lr:g}" + (" (grid edge)" if edge else "")])
    seed = next(iter(arms.values())).sweep_seed
    held_out = "" if seed == SWEEP_SEED else ", a seed no evaluated run uses"
    return Table(
        f"Learning-rate sweep (seed {seed}){title}",
        ["arm", *(f"val loss at LR {lr:g}" for lr in lrs), "chosen"],
        rows,
        f"Final validation loss (nats/token) of seed {seed}{held_out} at each peak learning rate; the lowest is "
        "chosen (an empty cell: a rate the arm did not try). "
        '"grid edge": the best rate is the smallest or largest tried, so a rate outside the grid may be '
        "better still.",
    )
