"""growlm report RUN_OR_STUDY: one self-contained HTML page plus the same tables as Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path

from growlm.errors import GrowlmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="self-contained HTML report (and Markdown tables) of a run or a study")
    p.add_argument("path", metavar="RUN_OR_STUDY", help="a run directory (growlm grow) or a study directory")
    p.add_argument("--out", help="HTML file to write (default: RUN_OR_STUDY/report.html); Markdown goes next to it")
    p.add_argument("--force", action="store_true", help="replace existing report files")
    p.set_defaults(func=_report)


def _report(args) -> None:
    from growlm.analysis.report import write_report

    if args.out:
        _check_not_a_file_of(Path(args.path), Path(args.out))
    html_path, md_path = write_report(args.path, args.out, args.force)
    print(f"wrote {html_path} and {md_path}")


def _check_not_a_file_of(folder: Path, out: Path) -> None:
    """--out (and the .md beside it) may replace an earlier report, never another file of the run or study."""
    from growlm.analysis.report import REPORT_HTML

    for target in (out, out.with_suffix(".md")):
        if (
            target.is_file()
            and folder.resolve() in target.resolve().parents
            and target.name not in (REPORT_HTML, Path(REPORT_HTML).with_suffix(".md").name)
        ):
            raise GrowlmError(
                f"--out {out} would overwrite {target}, a file of {folder}; write the report to "
                f"another file (default {folder / REPORT_HTML})"
            )
