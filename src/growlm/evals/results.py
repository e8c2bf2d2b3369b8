"""The readable scores table, and where results files go: written, checked, named (their layout: records.py)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from growlm.evals.records import EvalResults, Score
from growlm.evals.settings import PROTOCOL_LABELS
from growlm.io.atomic import atomic_write_json
from growlm.io.outputs import check_not_input, check_output_file

PERCENT_METRICS = {"acc", "acc_norm", "em", "f1", "match"}


def format_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in PERCENT_METRICS:
        return f"{100 * value:.2f}%"
    return f"{value:.2f}" if metric in {"bleu", "chrf", "ppl"} else f"{value:.4f}"


def render_table(scores: list[Score] | tuple[Score, ...], protocol: str) -> str:
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


def results_path(model: Path, protocol: str) -> Path:
    """Where a model's results go unless the caller names a file: MODEL/eval-PROTOCOL.json."""
    return Path(model) / f"eval-{protocol}.json"


def check_results_path(out: Path, model: Path, force: bool) -> None:
    """`out` may lie in the model folder (the default does), but may not be one of the files the model loads, a
    folder, or an existing file without `force`."""
    from growlm.composition.folder import COMPOSITION_FILE
    from growlm.model.folder import META_FILE, TOKENIZER_FILES

    model = Path(model)
    loaded = ["config.json", "generation_config.json", COMPOSITION_FILE, META_FILE, *TOKENIZER_FILES]
    if model.is_dir():
        loaded += [p.name for p in model.iterdir() if p.suffix == ".safetensors" or p.name.endswith(".index.json")]
    check_not_input(out, [model / name for name in loaded])
    check_output_file(out, force)


def write_results(path: Path, results: EvalResults, force: bool) -> None:
    check_output_file(path, force)
    atomic_write_json(path, results.to_json())
