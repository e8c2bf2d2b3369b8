"""Scores of every stage of a growth run as a depth x task table: JSON (long form), CSV (wide) and a plot; and the
evaluation of a run's stage models that makes them (`growlm eval-run`, growlm.api.evaluate_run).

Headline rows are every score except per-subject MMLU rows (those stay in the JSON and in each stage's own
results file).

- `DepthRow`: one score of one stage (a row of eval_by_depth.json).
- `DepthTable`: eval_by_depth.json (format "growlm-eval-by-depth-v1").
- `StageResults`, `RunEvaluation`: what evaluate_run returns.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rich.table import Table

from growlm.errors import GrowlmError
from growlm.evals.records import EvalResults, Score, known_fields
from growlm.evals.results import format_value, results_path, table_text, write_results
from growlm.evals.settings import PROTOCOL_LABELS, EvalSettings
from growlm.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from growlm.io.outputs import check_output_file
from growlm.io.ownership import PNG_METADATA, add_entries
from growlm.train.rundir import RunDir

if TYPE_CHECKING:
    from growlm.evals.tasks import TaskRun

FORMAT = "growlm-eval-by-depth-v1"


@dataclass(frozen=True)
class DepthRow:
    stage: int
    depth: int
    score: Score

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "depth": self.depth, **self.score.to_json()}

    @classmethod
    def from_json(cls, data: Any, where: str = "row") -> "DepthRow":
        score = Score.from_json(data, where)
        missing = [key for key in ("stage", "depth") if key not in data]
        if missing:
            raise GrowlmError(f"{where}: missing the field {missing[0]!r}")
        return cls(data["stage"], data["depth"], score)


@dataclass(frozen=True)
class DepthTable:
    protocol: str
    protocol_label: str
    settings: dict[str, Any]  # eval-run's EvalSettings; a study's own summary of its evaluation plan
    rows: tuple[DepthRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "protocol": self.protocol,
            "protocol_label": self.protocol_label,
            "settings": self.settings,
            "rows": [r.to_json() for r in self.rows],
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "eval_by_depth") -> "DepthTable":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GrowlmError(f"{where}: not a {FORMAT!r} file")
        values = known_fields(cls, data, where)
        if not isinstance(values["rows"], list):
            raise GrowlmError(f"{where}: rows must be a list")
        rows = tuple(DepthRow.from_json(r, f"{where} row {i}") for i, r in enumerate(values["rows"]))
        return cls(values["protocol"], values["protocol_label"], values["settings"], rows)


def stage_models(run: Path) -> list[tuple[int, Path]]:
    """(stage number, model folder) for RUN/stages/<k>/model, by stage."""
    found = RunDir(run).stage_models()
    if not found:
        raise GrowlmError(f"{run} has no stages/<k>/model folders; give a growth run directory (growlm grow)")
    return found


def is_headline(task: str) -> bool:
    return not task.startswith("mmlu/")


def long_rows(stage: int, depth: int, results: EvalResults) -> list[DepthRow]:
    return [DepthRow(stage, depth, s) for s in results.scores]


def _column(row: DepthRow) -> str:
    return f"{row.score.task}:{row.score.split}:{row.score.metric}"


def _columns(rows: list[DepthRow]) -> list[str]:
    """The headline columns, in the order they first appear."""
    return list(dict.fromkeys(_column(r) for r in rows if is_headline(r.score.task)))


def wide_csv(rows: list[DepthRow]) -> str:
    columns = _columns(rows)
    by_depth: dict[tuple[int, int], dict[str, Score]] = {}
    for r in rows:
        if is_headline(r.score.task):
            by_depth.setdefault((r.depth, r.stage), {})[_column(r)] = r.score
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["depth", "stage"] + [f"{c}{suffix}" for c in columns for suffix in ("", ":ci_low", ":ci_high")])
    for (depth, stage), cells in sorted(by_depth.items()):
        values = []
        for c in columns:
            s = cells.get(c)
            values += [s.value, s.ci95[0], s.ci95[1]] if s else ["", "", ""]
        writer.writerow([depth, stage, *values])
    return out.getvalue()


def _cell(s: Score | None) -> str:
    if s is None:
        return "-"
    low, high = (format_value(s.metric, v) for v in s.ci95)
    return f"{format_value(s.metric, s.value)} [{low}, {high}]"


def render_table(rows: list[DepthRow], protocol: str) -> str:
    """Depth x task table: each cell the value and its 95% interval."""
    columns = _columns(rows)
    cells = {(r.depth, r.stage, _column(r)): r.score for r in rows if is_headline(r.score.task)}
    table = Table(title=f"scores by depth: {PROTOCOL_LABELS[protocol]}", title_justify="left")
    for name in ["depth", "stage", *columns]:
        table.add_column(name.replace(":", " "), justify="right")
    for depth, stage in sorted({(d, s) for d, s, _ in cells}):
        table.add_row(str(depth), str(stage), *(_cell(cells.get((depth, stage, c))) for c in columns))
    return table_text(table, 200)


def plot_png(rows: list[DepthRow], protocol: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = _columns(rows)
    cols = min(3, len(columns))
    nrows = (len(columns) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        points = sorted((r for r in rows if _column(r) == column), key=lambda r: r.depth)
        depths = [r.depth for r in points]
        ax.plot(depths, [r.score.value for r in points], marker="o")
        ax.fill_between(
            depths, [r.score.ci95[0] for r in points], [r.score.ci95[1] for r in points], alpha=0.25, label="95% CI"
        )
        chance = points[0].score.chance
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


def write_tables(run: Path, protocol: str, rows: list[DepthRow], settings: dict[str, Any]) -> dict[str, Path]:
    paths = output_paths(run, protocol)
    add_entries(run, [p.name for p in paths.values()])
    atomic_write_json(paths["json"], DepthTable(protocol, PROTOCOL_LABELS[protocol], settings, tuple(rows)).to_json())
    atomic_write_text(paths["csv"], wide_csv(rows))
    atomic_write_bytes(paths["png"], plot_png(rows, protocol))
    return paths


@dataclass(frozen=True)
class StageResults:
    stage: int
    depth: int
    model: Path
    path: Path  # its results file
    results: EvalResults

    def rows(self) -> list[DepthRow]:
        return long_rows(self.stage, self.depth, self.results)


@dataclass(frozen=True)
class RunEvaluation:
    run: Path
    protocol: str
    stages: tuple[StageResults, ...]
    paths: dict[str, Path]  # the tables written: json, csv, png

    @property
    def rows(self) -> list[DepthRow]:
        return [r for s in self.stages for r in s.rows()]


def evaluate_run(
    run: Path,
    tasks: list[TaskRun],
    settings: EvalSettings,
    device: str = "cpu",
    force: bool = False,
    announce: Callable[[str], None] | None = None,
) -> RunEvaluation:
    """Evaluate every stage model of a growth run on `tasks` (growlm.evals.tasks.TaskRun), holding the run's lock
    (not while `growlm grow` or another evaluation writes it): each stage's results file (MODEL/eval-PROTOCOL.json)
    and the run's depth x task tables. `announce` is told each stage as it starts. Every output is checked
    (`force` to replace) before anything is evaluated."""
    from growlm.evals.tasks import evaluate
    from growlm.model.folder import model_depth

    run = Path(run)
    stages = [(k, model, model_depth(model)) for k, model in stage_models(run)]
    outputs = [results_path(model, settings.protocol) for _, model, _ in stages]
    for path in [*outputs, *output_paths(run, settings.protocol).values()]:
        check_output_file(path, force, "run")  # the run decides where its results go
    rundir = RunDir(run)
    with rundir.acquire():
        rundir.clean_temporaries()
        done = []
        for (k, model, depth), out in zip(stages, outputs):
            if announce is not None:
                announce(f"stage {k} (depth {depth}): {model}")
            results = evaluate(model, tasks, settings, device)
            write_results(out, results, force)
            done.append(StageResults(k, depth, model, out, results))
        rows = [r for s in done for r in s.rows()]
        paths = write_tables(run, settings.protocol, rows, settings.to_json())
    return RunEvaluation(run, settings.protocol, tuple(done), paths)
