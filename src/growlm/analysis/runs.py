"""Reading run and study directories for reports, through growlm.train.rundir and growlm.train.metrics.

Run directory (growlm.train.rundir): config.resolved.toml, manifest.json, metrics.jsonl, stages/<k>/model/
(growlm.json inside), and optionally the evaluation by depth that `growlm eval-run` writes:

- RUN/eval_by_depth.json: as growlm writes it (read through growlm.evals.by_depth.DepthTable), a list of records,
  or {"rows": [records]} (other keys are ignored), or
- RUN/eval_by_depth.csv with the record fields as columns.
  A record: {"depth": int, "task": str, "metric": str, "value": float, and optionally "ci95": [low, high] (or
  "ci_low" and "ci_high"), "chance", "n" (items), "subject" (per-subject rows, e.g. MMLU subjects; null/empty
  otherwise)}. Extra fields (split, shots, protocol, ...) are ignored.

Study directory: runs in subfolders, and optionally STUDY/study.json written by `growlm study`:
  {"study": name, "description": str, "runs": {label: path relative to the study}, "tables": [{"title": str,
   "columns": [str], "rows": [[cell]], "note": str}], "plots": [png path relative to the study]}.
Every key is optional; without "runs" every subfolder that is a run is one, labelled by its folder name.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from growlm.analysis.tables import Table
from growlm.errors import GrowlmError
from growlm.evals.by_depth import FORMAT as BY_DEPTH_FORMAT
from growlm.evals.by_depth import DepthRow, DepthTable, output_paths
from growlm.io.atomic import read_json
from growlm.train.metrics import read_metrics
from growlm.train.records import MetricRow
from growlm.train.rundir import RunDir

STUDY_FILE = "study.json"  # written by growlm.study.output
_REWRITE = "rewrite or remove it"  # how a damaged file a report reads is fixed


@dataclass(frozen=True)
class EvalRecord:
    depth: int
    task: str
    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    chance: float | None = None
    n: int | None = None
    subject: str | None = None


@dataclass
class Run:
    path: Path
    label: str
    config_text: str
    manifest: dict
    metrics: list[MetricRow]
    evals: list[EvalRecord]
    stage_models: dict[int, dict]


@dataclass
class Study:
    path: Path
    name: str
    description: str
    runs: list[Run]
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)


def _optional(value: object, cast: type) -> object:
    return None if value in (None, "") else cast(value)


def _record(raw: object, where: str) -> EvalRecord:
    if not isinstance(raw, dict):
        raise GrowlmError(f"{where}: expected an object with depth, task, metric, value")
    low, high = raw.get("ci95") or (raw.get("ci_low"), raw.get("ci_high"))
    task, subject = str(raw.get("task")), raw.get("subject")
    if subject in (None, "") and "/" in task:  # growlm eval names per-subject rows "mmlu/<subject>"
        task, subject = task.split("/", 1)
    try:
        return EvalRecord(
            depth=int(raw["depth"]),
            task=task,
            metric=str(raw["metric"]),
            value=float(raw["value"]),
            ci_low=_optional(low, float),
            ci_high=_optional(high, float),
            chance=_optional(raw.get("chance"), float),
            n=_optional(raw.get("n"), int),
            subject=_optional(subject, str),
        )
    except KeyError as err:
        raise GrowlmError(f"{where}: missing field {err.args[0]!r} (need depth, task, metric, value)") from None
    except (TypeError, ValueError) as err:
        raise GrowlmError(f"{where}: bad value ({err})") from None


def _from_row(row: DepthRow) -> EvalRecord:
    s = row.score
    task, _, subject = s.task.partition("/")  # growlm eval names per-subject rows "mmlu/<subject>"
    low, high = s.ci95
    return EvalRecord(
        row.depth,
        task,
        s.metric,
        float(s.value),
        _optional(low, float),
        _optional(high, float),
        _optional(s.chance, float),
        _optional(s.n, int),
        subject or None,
    )


def read_eval_by_depth(run: Path) -> list[EvalRecord]:
    """The run's evaluation by depth, [] when it has not been evaluated."""
    paths = output_paths(run, "harness")
    json_path, csv_path = paths["json"], paths["csv"]
    if json_path.is_file():
        data = read_json(json_path, _REWRITE)
        if isinstance(data, dict) and data.get("format") == BY_DEPTH_FORMAT:  # as growlm wrote it
            return [_from_row(r) for r in DepthTable.from_json(data, str(json_path)).rows]
        rows = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise GrowlmError(f'{json_path}: expected a list of records or {{"rows": [records]}}')
        return [_record(r, f"{json_path} record {i}") for i, r in enumerate(rows)]
    if csv_path.is_file():
        with csv_path.open(encoding="utf-8", newline="") as f:
            return [_record(r, f"{csv_path} line {i}") for i, r in enumerate(csv.DictReader(f), start=2)]
    return []


def _stage_models(run: RunDir) -> dict[int, dict]:
    from growlm.model.folder import find_meta

    models = {}
    for stage, model in run.stage_models():
        meta = find_meta(model)
        if meta is not None:
            models[stage] = {"path": str(model.relative_to(run.path)), **meta}
    return models


def load_run(path: str | Path, label: str | None = None) -> Run:
    path, run = Path(path), RunDir(path)
    if not RunDir.is_run(path):
        raise GrowlmError(
            f"{path} is not a run directory (no {run.metrics.name} or {run.config_file.name}); "
            "pass a folder written by `growlm grow` or `growlm study`"
        )
    config, manifest, metrics = run.config_file, run.manifest_file, run.metrics
    return Run(
        path=path,
        label=label or path.name,
        config_text=config.read_text(encoding="utf-8") if config.is_file() else "",
        manifest=read_json(manifest, _REWRITE) if manifest.is_file() else {},
        metrics=read_metrics(metrics) if metrics.is_file() else [],
        evals=read_eval_by_depth(path),
        stage_models=_stage_models(run),
    )


def _table(raw: object, where: str) -> Table:
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), list) or not isinstance(raw.get("rows"), list):
        raise GrowlmError(f'{where}: a table needs "columns" (list) and "rows" (list of lists)')
    rows = [list(r) for r in raw["rows"]]
    if any(len(r) != len(raw["columns"]) for r in rows):
        raise GrowlmError(f"{where}: every row needs {len(raw['columns'])} cells, one per column")
    return Table(str(raw.get("title", "")), [str(c) for c in raw["columns"]], rows, str(raw.get("note", "")))


def load_study(path: str | Path) -> Study:
    path = Path(path)
    spec_path = path / STUDY_FILE
    spec = read_json(spec_path, _REWRITE) if spec_path.is_file() else {}
    if not isinstance(spec, dict):
        raise GrowlmError(f"{spec_path}: expected a JSON object")
    run_paths = spec.get("runs") or {p.name: p.name for p in sorted(path.iterdir()) if p.is_dir() and RunDir.is_run(p)}
    if not isinstance(run_paths, dict):
        raise GrowlmError(f'{spec_path}: "runs" must map labels to run folders')
    plots = [path / p for p in spec.get("plots", [])]
    missing = [str(p) for p in plots if not p.is_file()]
    if missing:
        raise GrowlmError(f"{spec_path}: plot files missing: {', '.join(missing)}")
    if not run_paths and not spec:
        raise GrowlmError(f"{path} is neither a run nor a study directory (no run subfolders, no {STUDY_FILE})")
    return Study(
        path=path,
        name=str(spec.get("study", path.name)),
        description=str(spec.get("description", "")),
        runs=[load_run(path / p, label) for label, p in run_paths.items()],
        tables=[_table(t, f"{spec_path} table {i}") for i, t in enumerate(spec.get("tables", []))],
        plots=plots,
    )
