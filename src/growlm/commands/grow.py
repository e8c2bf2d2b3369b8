"""growlm grow CONFIG [--set k=v ...] [--out RUN] [--resume] [--force] [--ignore-memory-check]; growlm export
CHECKPOINT --out DIR."""

from __future__ import annotations

import argparse
from pathlib import Path

from growlm.errors import GrowlmError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grow", help="train a model by a growth plan (monolithic baselines are one-stage plans)")
    p.add_argument("config", nargs="?", help="TOML config (configs/*.toml); optional with --resume")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)",
    )
    p.add_argument("--out", help="run directory (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument(
        "--from",
        dest="base",
        metavar="RUN",
        help="start from the finished run RUN: the config's first stages must be RUN's, and only the later ones "
        "train (grow, adapt or continue a trained model without training it again)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing run directory (only something growlm made is ever replaced)",
    )
    p.add_argument(
        "--ignore-memory-check",
        dest="check_memory",
        action="store_false",
        help="train even when the memory estimate says the run will not fit",
    )
    p.set_defaults(func=_grow)

    e = sub.add_parser("export", help="write a checkpoint as a plain Hugging Face model folder")
    e.add_argument("checkpoint", help="RUN/checkpoints/step-... folder")
    e.add_argument("--out", required=True)
    e.add_argument("--force", action="store_true")
    e.set_defaults(func=_export)


def _grow(args) -> int:
    from growlm.api import grow

    result = grow(args.config, args.out, args.overrides, _start(args), check_memory=args.check_memory)
    if result.summaries is not None:
        _print_stages(result.summaries)
        print(f"run {result.run.path}: exported models in {result.run.stages}/<k>/model")
    return 0


def _start(args):
    """--resume, --from RUN and --force as the recipe's one `start` (growlm.train.start)."""
    from growlm.api import Branch, New, Resume

    if args.resume and args.base:
        raise GrowlmError("--from starts a new run from a finished one; drop --resume (or --from)")
    if args.resume:
        return Resume()  # a resume replaces nothing: --force does not apply
    return Branch(args.base, args.force) if args.base else New(args.force)


def _export(args) -> int:
    from growlm.api import export
    from growlm.io.outputs import check_not_input

    check_not_input(args.out, [args.checkpoint])  # --out RUN --force would delete the run holding the checkpoint
    out = export(Path(args.checkpoint), Path(args.out), args.force)
    print(f"exported {args.checkpoint} to {out}")
    return 0


def _print_stages(summaries) -> None:
    """The stage summaries (growlm.train.records.StageSummary) as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="growth run by stage")
    for col in (
        "stage",
        "depth",
        "d_model",
        "LoRA rank",
        "trainable",
        "total",
        "tokens",
        "TFLOPs",
        "val loss",
        "wall s",
    ):
        table.add_column(col, justify="right")
    for s in summaries:
        table.add_row(
            str(s.stage),
            str(s.depth),
            str(s.d_model or "-"),
            str(s.lora_rank or "-"),
            f"{s.trainable_params / 1e6:.2f}M",
            f"{s.total_params / 1e6:.2f}M",
            f"{s.tokens / 1e3:,.0f}k",
            f"{s.flops / 1e12:,.1f}",
            f"{s.val_loss:.4f}",
            f"{s.wall_s:.0f}",
        )
    Console(width=max(100, Console().width)).print(table)
