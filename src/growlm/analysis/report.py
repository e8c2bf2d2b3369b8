"""`growlm report`: one self-contained HTML page (and the same tables as Markdown) for a run or a study.

A run report has the stage summary, the loss curve over all stages with growth steps marked, the evaluation by
depth (table, confidence bands, MMLU subject heatmap) when the run has been evaluated, the exported models, the
manifest (hashes, commit, machine), the resolved config and the environment the report was made in. A study
report adds the study's own tables and plots (see rundir.py for study.json), loss against cumulative FLOPs for
all runs, a one-line-per-run summary, and each run's section.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from growlm import __version__
from growlm.analysis.document import ReportBuilder
from growlm.analysis.plots import plot_loss_curve, plot_loss_vs_flops, plot_metric_by_depth, plot_subject_heatmap
from growlm.analysis.runs import EvalRecord, Run, Study, load_run, load_study
from growlm.analysis.tables import Table, format_value
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_text
from growlm.io.outputs import check_output_file
from growlm.io.ownership import add_entries
from growlm.provenance import cpu_model, git_commit
from growlm.train.records import MetricRow, StageEnd, StageStart, TrainRow, ValRow
from growlm.train.rundir import RunDir


def _stage_numbers(metrics: list[MetricRow]) -> list[int]:
    return sorted({r.stage for r in metrics})


def _of(rows: list[MetricRow], kind: type) -> list:
    return [r for r in rows if isinstance(r, kind)]


def _stage_facts(run: Run, stage: int) -> dict:
    """One stage's numbers, preferring its stage_end row (the run's own totals) over the last logged rows (a
    stage still training has none)."""
    of_stage = [r for r in run.metrics if r.stage == stage]
    train, val = _of(of_stage, TrainRow), [r for r in _of(of_stage, ValRow) if not r.at_stage_start]
    start = next(iter(_of(of_stage, StageStart)), None)
    end = next((r.summary for r in _of(of_stage, StageEnd)), None)
    last_train = train[-1] if train else None
    tail = [r.loss for r in train[-max(1, len(train) // 10) :]]
    return {
        "depth": of_stage[-1].depth if of_stage else None,
        "d_model": start.d_model if start else None,
        "steps": len(train),
        "lora_rank": start.lora_rank if start else None,
        "trainable_params": start.trainable_params if start else None,
        "total_params": start.total_params if start else None,
        "tokens": end.tokens if end else (last_train.tokens if last_train else None),
        "flops": end.flops if end else (last_train.flops if last_train else None),
        "train_loss": sum(tail) / len(tail) if tail else None,
        "val_at_start": next((r.val_loss for r in _of(of_stage, ValRow) if r.at_stage_start), None),
        "val_loss": end.val_loss if end else (val[-1].val_loss if val else None),
        # Train rows time each stage from its own start; stage_end has the stage's total.
        "wall": end.wall_s if end else (last_train.wall if last_train else None),
    }


def stage_table(run: Run) -> Table:
    columns = {
        "stage": "stage",
        "depth": "depth",
        "d_model": "d_model",
        "steps": "train rows",
        "lora_rank": "LoRA rank",
        "trainable_params": "trainable params",
        "total_params": "total params",
        "tokens": "tokens (cum.)",
        "flops": "FLOPs (cum.)",
        "train_loss": "train loss (last 10%)",
        "val_at_start": "val loss after growth",
        "val_loss": "val loss (end)",
        "wall": "wall (s)",
    }
    facts = [{"stage": stage, **_stage_facts(run, stage)} for stage in _stage_numbers(run.metrics)]
    for key in ("d_model", "lora_rank", "val_at_start"):
        if all(f[key] is None for f in facts):
            del columns[key]
    return Table(f"Stages: {run.label}", list(columns.values()), [[f[key] for key in columns] for f in facts])


def run_summary_row(run: Run) -> list[object]:
    facts = [_stage_facts(run, stage) for stage in _stage_numbers(run.metrics)]
    walls = [f["wall"] for f in facts if f["wall"] is not None]
    final = facts[-1] if facts else {}
    return [
        run.label,
        final.get("depth"),
        len(facts),
        final.get("tokens"),
        final.get("flops"),
        sum(walls) if walls else None,
        final.get("val_loss"),
    ]


def eval_table(records: list[EvalRecord], label: str) -> Table:
    overall = [r for r in records if r.subject is None]
    series = list(dict.fromkeys((r.task, r.metric) for r in overall))
    chance = {(r.task, r.metric): r.chance for r in overall if r.chance is not None}
    columns = [f"{t} {m}" + (f" (chance {format_value(chance[t, m])})" if (t, m) in chance else "") for t, m in series]
    cells = {(r.depth, r.task, r.metric): r for r in overall}

    def cell(r: EvalRecord | None) -> str:
        if r is None:
            return "–"
        interval = f" [{format_value(r.ci_low)}, {format_value(r.ci_high)}]" if r.ci_low is not None else ""
        return format_value(r.value) + interval

    rows = [
        [depth] + [cell(cells.get((depth, t, m))) for t, m in series] for depth in sorted({r.depth for r in overall})
    ]
    n = {r.n for r in overall if r.n}
    note = "value [95% CI]" + (f"; items per task: {', '.join(map(str, sorted(n)))}" if n else "")
    return Table(f"Evaluation by depth: {label}", ["depth", *columns], rows, note)


def models_table(run: Run) -> Table:
    rows = [
        [
            stage,
            info.get("depth"),
            info.get("path"),
            (info.get("substrate") or {}).get("kind"),
            (info.get("substrate") or {}).get("sha256"),
            info.get("tokenizer_sha256"),
        ]
        for stage, info in run.stage_models.items()
    ]
    return Table(
        f"Exported models: {run.label}",
        ["stage", "depth", "folder", "substrate", "substrate sha256", "tokenizer sha256"],
        rows,
    )


def _flatten(data: object, prefix: str = "") -> list[list[object]]:
    if isinstance(data, Mapping) and data:
        return [row for key, value in data.items() for row in _flatten(value, f"{prefix}{key}.")]
    if isinstance(data, list) and data and all(isinstance(v, Mapping) for v in data):
        return [row for i, value in enumerate(data) for row in _flatten(value, f"{prefix}{i}.")]
    return [
        [
            prefix.rstrip("."),
            data if isinstance(data, int | float | str) or data is None else json.dumps(data, ensure_ascii=False),
        ]
    ]


def environment_table() -> Table:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    rows = [
        ["made", datetime.now(timezone.utc).isoformat(timespec="seconds")],
        ["growlm", __version__],
        ["git commit", git_commit()],
        ["python", sys.version.split()[0]],
        ["torch", torch.__version__],
        ["platform", platform.platform()],
        ["cpu", f"{cpu_model()} ({os.cpu_count()} logical cores)"],
        ["gpu", gpu],
    ]
    return Table(
        "Environment of this report",
        ["item", "value"],
        rows,
        note="The machine and code that trained the run are in its manifest above.",
    )


def _run_sections(doc: ReportBuilder, run: Run, heading: str) -> None:
    doc.section(heading)
    doc.paragraph(f"Run directory: {run.path}")
    if run.metrics:
        doc.table(stage_table(run))
        doc.figure(
            plot_loss_curve(run.metrics, f"Loss over all stages: {run.label}"),
            "Training loss (smoothed line over raw steps) and validation loss; dashed lines mark the steps "
            "where layers were added.",
        )
    else:
        doc.paragraph(f"No {RunDir(run.path).metrics.name}: the run has not logged any training yet.")
    if run.evals:
        doc.table(eval_table(run.evals, run.label))
        if any(r.subject is None for r in run.evals):
            doc.figure(
                plot_metric_by_depth(run.evals), "Every task by depth with 95% confidence bands and the chance level."
            )
        for task in dict.fromkeys(r.task for r in run.evals if r.subject is not None):
            doc.figure(plot_subject_heatmap(run.evals, task), f"{task}: score by subject and depth.")
    if run.stage_models:
        doc.table(models_table(run))
    if run.manifest:
        doc.table(
            Table(
                f"Manifest: {run.label}",
                ["key", "value"],
                _flatten(run.manifest),
                note="hashes of substrate, tokenizer and data, code version and machine, as the run wrote them",
            )
        )
    if run.config_text:
        doc.preformatted(f"Resolved config: {run.label} ({RunDir(run.path).config_file.name})", run.config_text)


def study_document(study: Study) -> ReportBuilder:
    doc = ReportBuilder(f"growlm study: {study.name}", f"{study.path} · {len(study.runs)} runs")
    if study.description:
        doc.paragraph(study.description)
    if study.tables or study.plots:
        doc.section("Results")
        for table in study.tables:
            doc.table(table)
        for plot in study.plots:
            doc.png(plot.read_bytes(), plot.stem.replace("_", " "))
    if any(run.metrics for run in study.runs):
        doc.section("Loss at equal compute")
        doc.figure(
            plot_loss_vs_flops({run.label: run.metrics for run in study.runs}),
            "Validation loss against cumulative training FLOPs (log scale) for every run of the study.",
        )
    doc.section("Runs")
    doc.table(
        Table(
            "Runs at a glance",
            ["run", "depth", "stages", "tokens", "FLOPs", "wall (s)", "final val loss"],
            [run_summary_row(run) for run in study.runs],
        )
    )
    for run in study.runs:
        _run_sections(doc, run, f"Run: {run.label}")
    doc.section("Environment")
    doc.table(environment_table())
    return doc


def run_document(run: Run) -> ReportBuilder:
    doc = ReportBuilder(f"growlm run: {run.label}", str(run.path))
    _run_sections(doc, run, "Training")
    doc.section("Environment")
    doc.table(environment_table())
    return doc


REPORT_HTML = "report.html"  # and report.md beside it


def build_report(path: str | Path) -> ReportBuilder:
    path = Path(path)
    if not path.is_dir():
        raise GrowlmError(f"{path} does not exist or is not a folder; pass a run or study directory")
    return run_document(load_run(path)) if RunDir.is_run(path) else study_document(load_study(path))


class ReportFiles(NamedTuple):
    """The files a report was written to: the HTML page and the Markdown tables beside it."""

    html: Path
    markdown: Path


def write_report(path: str | Path, out: str | Path | None = None, force: bool = False) -> ReportFiles:
    """Write OUT (default PATH/report.html) and the Markdown next to it (same name, .md)."""
    path = Path(path)
    html_path = Path(out) if out is not None else path / REPORT_HTML
    md_path = html_path.with_suffix(".md")
    if out is not None:
        _check_not_a_file_of(path, html_path)
    for target in (html_path, md_path):
        check_output_file(target, force)
    doc = build_report(path)
    add_entries(html_path.parent, [html_path.name])
    add_entries(md_path.parent, [md_path.name])
    atomic_write_text(md_path, doc.to_markdown())
    atomic_write_text(html_path, doc.to_html())
    return ReportFiles(html_path, md_path)


def _check_not_a_file_of(folder: Path, out: Path) -> None:
    """`out` (and the .md beside it) may replace an earlier report, never another file of the run or study."""
    for target in (out, out.with_suffix(".md")):
        if (
            target.is_file()
            and folder.resolve() in target.resolve().parents
            and target.name not in (REPORT_HTML, Path(REPORT_HTML).with_suffix(".md").name)
        ):
            raise GrowlmError(
                f"`out` {out} would overwrite {target}, a file of {folder}; write the report to "
                f"another file (default {folder / REPORT_HTML})"
            )
