"""Scores, the readable table and the results JSON.

Results JSON (format "growlm-eval-v1"):
- "protocol" and "protocol_label"; "model": path and its growlm.json; "settings"; "growlm_version".
- "scores": one row per (task, metric): value, ci95 [low, high] (percentile bootstrap over items, fixed seed),
  n (items scored), chance (what guessing scores; null where no such level exists), split, shots, protocol,
  truncated (share of the scored items whose prompt was cut from the left to fit the window), skipped (items
  left out because they cannot be scored in the window: an answer longer than the window, or a prompt that does
  not fit before the generation cap) and majority (multiple choice: the accuracy of always giving the most
  frequent gold answer, e.g. always "no" on BoolQ; null elsewhere).
- "tasks": per task "info" (data source, prompt format, scoring rule) and "items": one record per item with
  everything needed to recompute its score (exact strings scored, log-likelihoods and byte lengths, or prompt,
  output and references).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from growlm import __version__
from growlm.evals.settings import PROTOCOL_LABELS, EvalSettings
from growlm.io import atomic_write_json, check_output_file

FORMAT = "growlm-eval-v1"
PERCENT_METRICS = {"acc", "acc_norm", "em", "f1", "match"}


@dataclass(frozen=True)
class Score:
    task: str
    metric: str
    value: float
    ci95: tuple[float, float]
    n: int
    chance: float | None
    split: str
    shots: int
    protocol: str
    truncated: float = 0.0  # share of scored items whose prompt was cut
    skipped: int = 0  # items that could not be scored in the window
    majority: float | None = None  # always the most frequent gold answer (multiple choice)


@dataclass
class TaskResult:
    task: str
    scores: list[Score]
    items: list[dict]
    info: dict = field(default_factory=dict)


def format_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in PERCENT_METRICS:
        return f"{100 * value:.2f}%"
    return f"{value:.2f}" if metric in {"bleu", "chrf", "ppl"} else f"{value:.4f}"


def render_table(scores: list[Score], protocol: str) -> str:
    table = Table(title=f"growlm eval: {PROTOCOL_LABELS[protocol]}", title_justify="left")
    for name in ("task", "split", "shots", "metric", "value", "95% CI", "n", "chance", "majority", "cut", "skipped"):
        table.add_column(name, justify="left" if name in {"task", "split", "metric"} else "right")
    for s in scores:
        table.add_row(
            s.task,
            s.split,
            str(s.shots),
            s.metric,
            format_value(s.metric, s.value),
            f"{format_value(s.metric, s.ci95[0])} .. {format_value(s.metric, s.ci95[1])}",
            str(s.n),
            format_value(s.metric, s.chance),
            format_value(s.metric, s.majority),
            f"{100 * s.truncated:.1f}%",
            str(s.skipped),
        )
    return table_text(table, 160)


def table_text(table: Table, width: int) -> str:
    """A rich table as plain text, `width` columns wide."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True).print(table)
    return buffer.getvalue()


def results_payload(
    model_path: Path, model_meta: dict | None, settings: EvalSettings, results: list[TaskResult]
) -> dict:
    return {
        "format": FORMAT,
        "protocol": settings.protocol,
        "protocol_label": PROTOCOL_LABELS[settings.protocol],
        "growlm_version": __version__,
        "model": {"path": str(model_path), "growlm": model_meta},
        "settings": settings.to_json(),
        "scores": [asdict(s) for r in results for s in r.scores],
        "tasks": {r.task: {"info": r.info, "items": r.items} for r in results},
    }


def write_results(path: Path, payload: dict, force: bool) -> None:
    check_output_file(path, force)
    atomic_write_json(path, payload)
