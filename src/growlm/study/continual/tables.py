"""The continual study's tables and plot (study/continual.py trains and measures): every arm's cost, and its
forgetting and learning paired with the reference arm over seeds."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from matplotlib.figure import Figure

from growlm.analysis.tables import Table
from growlm.study.matched import holm, mean_sd_text, p_cell, paired


@dataclass(frozen=True)
class Measures:
    """One model's numbers: validation loss per language (nats/token), on mixed documents, bpb per held-out
    source."""

    first: float
    second: float
    mixed: float
    bpb: dict[str, float | None]


@dataclass(frozen=True)
class ArmRow:
    name: str
    what: str
    lr: str
    trainable: int
    added_flops: list[float]
    wall: list[float]


def arms_table(rows: list[ArmRow], before: dict, langs: tuple[str, str], seeds: int, reference_arm: str) -> Table:
    reference = next(r for r in rows if r.name == reference_arm)
    base = list(before.values())
    return Table(
        "Adding a language: every arm at equal added FLOPs",
        ["arm", "what", "LR", "trainable params", "added FLOPs (x fine-tune)", "wall (s)"],
        [
            [
                r.name,
                r.what,
                r.lr,
                f"{r.trainable / 1e6:.2f}M",
                f"{statistics.fmean(r.added_flops):.3e} "
                f"({statistics.fmean(a / f for a, f in zip(r.added_flops, reference.added_flops)):.3f}x)",
                mean_sd_text(r.wall, 0),
            ]
            for r in rows
        ],
        f"Added FLOPs: training FLOPs spent after the base (the joint arm: its total minus the base's), mean over "
        f"{seeds} seed(s) and the ratio to fine-tune's. The base before any arm: {langs[0]} loss "
        f"{mean_sd_text([m.first for m in base])}, {langs[1]} loss {mean_sd_text([m.second for m in base])}, mixed "
        f"{mean_sd_text([m.mixed for m in base])}. Trainable params: in the added stage (a scratch run's all). "
        "Wall: training time of the added stage, validation included, on this machine; the compositions' is their "
        "expert's.",
    )


def differences_table(
    after: dict[str, list[Measures]], before: dict, langs: tuple[str, str], reference_arm: str
) -> Table:
    base = list(before.values())
    metrics = {
        f"{langs[0]} loss change (forgetting)": lambda ms: [m.first - b.first for m, b in zip(ms, base)],
        f"{langs[1]} loss": lambda ms: [m.second for m in ms],
        "mixed loss": lambda ms: [m.mixed for m in ms],
    }
    reference = {key: f(after[reference_arm]) for key, f in metrics.items()}
    columns, rows = ["arm"], []
    for key in metrics:
        columns += [key, f"{key}: Δ vs {reference_arm} [95% CI]", f"{key}: p", f"{key}: p (Holm)"]
    bpb_names = sorted({k for ms in after.values() for m in ms for k in m.bpb})
    columns += [f"bpb {name}" for name in bpb_names]
    adjusted = {
        key: holm({name: paired(f(ms), reference[key]).p for name, ms in after.items() if name != reference_arm})
        for key, f in metrics.items()
    }
    for name, ms in after.items():
        row = [name]
        for key, f in metrics.items():
            values = f(ms)
            diff = paired(values, reference[key]) if name != reference_arm else None
            row += [mean_sd_text(values), diff.cell() if diff else None, p_cell(diff.p) if diff else None]
            row.append(p_cell(adjusted[key].get(name)) if diff else None)
        row += [
            mean_sd_text([m.bpb[n] for m in ms]) if all(m.bpb.get(n) is not None for m in ms) else None
            for n in bpb_names
        ]
        rows.append(row)
    return Table(
        "Forgetting and learning, paired with fine-tune",
        columns,
        rows,
        f"Losses in nats/token on held-out documents of each language's training sources and on documents that "
        f"alternate {langs[0]} and {langs[1]} paragraph by paragraph, mean ± sd over seeds; forgetting: "
        f"{langs[0]} loss after minus the base's before, per seed (the same base). Δ: arm - {reference_arm}, paired by "
        "seed, 95% t interval; p two-sided paired t-test; p (Holm): adjusted over the arms, per column. bpb: bits "
        "per byte on a held-out source of each language that no run trains on.",
    )


def per_seed_table(after: dict[str, list[Measures]], before: dict, langs: tuple[str, str]) -> Table:
    """Every model's numbers, seed by seed (the base first), behind the means of the other tables."""
    bpb_names = sorted({k for ms in after.values() for m in ms for k in m.bpb})
    rows = []
    for name, ms in {"base (before)": list(before.values()), **after}.items():
        for seed, m, b in zip(before, ms, before.values()):
            rows.append(
                [name, seed, round(m.first, 4), round(m.first - b.first, 4), round(m.second, 4), round(m.mixed, 4)]
                + [None if m.bpb.get(n) is None else round(m.bpb[n], 4) for n in bpb_names]
            )
    return Table(
        "Every model, seed by seed",
        ["model", "seed", f"{langs[0]} loss", f"{langs[0]} loss change", f"{langs[1]} loss", "mixed loss"]
        + [f"bpb {n}" for n in bpb_names],
        rows,
        f"Losses in nats/token as in the table above; {langs[0]} loss change: after minus the same seed's base.",
    )


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def forgetting_plot(after: dict[str, list[Measures]], before: dict, langs: tuple[str, str]) -> Figure:
    """Per arm: first-domain loss change (x, forgetting) against second-domain gain over the base (y), mean and
    sd over seeds."""
    base = list(before.values())
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    for i, (name, ms) in enumerate(after.items()):
        x = [m.first - b.first for m, b in zip(ms, base)]
        y = [b.second - m.second for m, b in zip(ms, base)]
        ax.errorbar(
            statistics.fmean(x),
            statistics.fmean(y),
            xerr=_sd(x),
            yerr=_sd(y),
            fmt="o",
            capsize=3,
            color=f"C{i % 10}",
            label=name,
        )
    ax.axvline(0.0, color="0.5", lw=1, ls=":")
    ax.set(
        xlabel=f"{langs[0]} loss change vs the base (nats/token; right = forgetting)",
        ylabel=f"{langs[1]} loss gain vs the base (nats/token; up = learned)",
        title="Adding a language at equal added FLOPs: mean ± sd over seeds",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
