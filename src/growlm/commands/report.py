"""growlm report RUN_OR_STUDY: one self-contained HTML page plus the same tables as Markdown."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="self-contained HTML report (and Markdown tables) of a run or a study")
    p.add_argument("run_or_study", metavar="RUN_OR_STUDY", help="a run directory (growlm grow) or a study directory")
    p.add_argument("--out", help="HTML file to write (default: RUN_OR_STUDY/report.html); Markdown goes next to it")
    p.add_argument("--force", action="store_true", help="replace existing report files")
    p.set_defaults(func=_report)


def _report(args) -> None:
    from growlm.api import report

    written = report(args.run_or_study, args.out, args.force)
    print(f"wrote {written.html} and {written.markdown}")
