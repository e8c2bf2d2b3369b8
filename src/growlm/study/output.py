"""A study's results on disk: study.json, tables as CSV and Markdown, plots as PNG, then the HTML report.

study.json follows growlm.analysis.runs: {"study", "description", "runs": {label: path relative to the study},
"tables": [{"title", "columns", "rows", "note"}], "plots": [PNG paths relative to the study]}, plus whatever a
study adds (growth-operators: "comparison", the per-seed losses at each FLOP budget and the paired differences,
and "verdict").
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from matplotlib.figure import Figure

from growlm.analysis.plots import png_bytes
from growlm.analysis.runs import STUDY_FILE
from growlm.analysis.tables import Table
from growlm.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from growlm.study.runs import say


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(["" if v is None else v for v in row] for row in table.rows)
    return out.getvalue()


def write_study(
    root: Path,
    name: str,
    description: str,
    runs: dict[str, Path],
    tables: list[Table],
    figures: dict[str, Figure],
    extra: dict | None = None,
) -> Path:
    """Write everything and render the report; returns the report's HTML path. `extra`: the study's own
    machine-readable results, stored in study.json next to the tables."""
    from growlm.analysis.report import write_report

    plots = []
    for stem, fig in figures.items():
        plots.append(f"plots/{stem}.png")
        atomic_write_bytes(root / plots[-1], png_bytes(fig))
    for table in tables:
        atomic_write_text(root / "tables" / f"{slug(table.title)}.csv", table_csv(table))
    atomic_write_text(root / "tables.md", f"# {name}\n\n{description}\n\n" + "\n".join(t.to_markdown() for t in tables))
    atomic_write_json(
        root / STUDY_FILE,
        {
            "study": name,
            "description": description,
            "runs": {label: str(path.relative_to(root)) for label, path in runs.items()},
            "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows, "note": t.note} for t in tables],
            "plots": plots,
            **(extra or {}),
        },
    )
    html_path, _ = write_report(root, force=True)
    say(f"wrote {root / STUDY_FILE}, {root / 'tables.md'}, {len(plots)} plots and the report {html_path}")
    return html_path
