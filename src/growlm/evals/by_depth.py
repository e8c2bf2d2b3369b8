"""Scores of every stage of a growth run as a depth x task table: JSON (long form), CSV (wide) and a plot.

Headline rows are every score except per-subject MMLU rows (those stay in the JSON and in each stage's own
results file).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rich.table import Table

from growlm.errors import GrowlmError
from growlm.evals.results import format_value, table_text
from growlm.evals.settings import PROTOCOL_LABELS
from growlm.io import PNG_METADATA, add_entries, atomic_write_bytes, atomic_write_json, atomic_write_text
from growlm.train.rundir import RunDir


def stage_models(run: Path) -> list[tuple[int, Path]]:
    """(stage number, model folder) for RUN/stages/<k>/model, by stage."""
    found = RunDir(run).stage_models()
    if not found:
        raise GrowlmError(f"{run} has no stages/<k>/model folders; give a growth run directory (growlm grow)")
    return found


def is_headline(task: str) -> bool:
    return not task.startswith("mmlu/")


def long_rows(stage: int, depth: int, payload: dict) -> list[dict]:
    return [{"stage": stage, "depth": depth, **s} for s in payload["scores"]]


def _column(row: dict) -> str:
    return f"{row['task']}:{row['split']}:{row['metric']}"


def _columns(rows: list[dict]) -> list[str]:
    """The headline columns, in the order they first appear."""
    return list(dict.fromkeys(_column(r) for r in rows if is_headline(r["task"])))


def wide_csv(rows: list[dict]) -> str:
    columns = _columns(rows)
    by_depth: dict[tuple[int, int], dict] = {}
    for r in rows:
        if is_headline(r["task"]):
            by_depth.setdefault((r["depth"], r["stage"]), {})[_column(r)] = r
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["depth", "stage"] + [f"{c}{suffix}" for c in columns for suffix in ("", ":ci_low", ":ci_high")])
    for (depth, stage), cells in sorted(by_depth.items()):
        values = []
        for c in columns:
            r = cells.get(c)
            values += [r["value"], r["ci95"][0], r["ci95"][1]] if r else ["", "", ""]
        writer.writerow([depth, stage, *values])
    return out.getvalue()


def render_table(rows: list[dict], protocol: str) -> str:
    """Depth x task table: each cell the value and its 95% interval."""
    columns = _columns(rows)
    cells = {(r["depth"], r["stage"], _column(r)): r for r in rows if is_headline(r["task"])}
    table = Table(title=f"scores by depth: {PROTOCOL_LABELS[protocol]}", title_justify="left")
    for name in ["depth", "stage", *columns]:
        table.add_column(name.replace(":", " "), justify="right")
    for depth, stage in sorted({(d, s) for d, s, _ in cells}):
        values = []
        for c in columns:
            r = cells.get((depth, stage, c))
            values.append(
                f"{format_value(r['metric'], r['value'])} [{format_value(r['metric'], r['ci95'][0])}, "
                f"{format_value(r['metric'], r['ci95'][1])}]"
                if r
                else "-"
            )
        table.add_row(str(depth), str(stage), *values)
    return table_text(table, 200)


def plot_png(rows: list[dict], protocol: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = _columns(rows)
    cols = min(3, len(columns))
    nrows = (len(columns) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        points = sorted((r["depth"], r) for r in rows if _column(r) == column)
        depths = [d for d, _ in points]
        ax.plot(depths, [r["value"] for _, r in points], marker="o")
        ax.fill_between(
            depths, [r["ci95"][0] for _, r in points], [r["ci95"][1] for _, r in points], alpha=0.25, label="95% CI"
        )
        chance = points[0][1]["chance"]
        if chance is not None:
            ax.axhline(chance, linestyle="--", color="grey", label="chance")
        ax.set_title(column.replace(":", " "), fontsize=9)
        ax.set_xlabel("depth (blocks)")
        ax.set_xticks(sorted(set(depths)))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    fig.suptitle(f"Scores by depth: {PROTOCOL_LABELS[protocol]}", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, metadata=PNG_METADATA)
    plt.close(fig)
    return buffer.getvalue()


def output_paths(run: Path, protocol: str) -> dict[str, Path]:
    stem = "eval_by_depth" if protocol == "harness" else "eval_by_depth_paper"
    return {ext: run / f"{stem}.{ext}" for ext in ("json", "csv", "png")}


def write_tables(run: Path, protocol: str, rows: list[dict], settings: dict) -> dict[str, Path]:
    paths = output_paths(run, protocol)
    add_entries(run, [p.name for p in paths.values()])
    atomic_write_json(
        paths["json"],
        {
            "format": "growlm-eval-by-depth-v1",
            "protocol": protocol,
            "protocol_label": PROTOCOL_LABELS[protocol],
            "settings": settings,
            "rows": rows,
        },
    )
    atomic_write_text(paths["csv"], wide_csv(rows))
    atomic_write_bytes(paths["png"], plot_png(rows, protocol))
    return paths
