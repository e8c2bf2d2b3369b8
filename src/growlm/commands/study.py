"""growlm study NAME [--scale cpu|paper|smoke] [--seeds N] [--substrate visual|binary] [--budgets B,B,...]
[--arms A,A,...] [--out DIR] [--set KEY=VALUE ...] [--force]."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from growlm.commands.args import positive_int

STUDIES = {
    "depth": "growlm.study.depth",
    "nine-layer": "growlm.study.nine_layer",
    "compose": "growlm.study.compose",
    "growth-operators": "growlm.study.growth_operators",
    "continual": "growlm.study.continual",
}
TAKES_SUBSTRATE = {"growth-operators"}
TAKES_LADDER = {"growth-operators"}  # --budgets and --arms
TAKES_SOURCES = {"continual"}  # --base-source and --new-source


def _budgets(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas, e.g. 0.25,1,4") from None
    if any(not v > 0 for v in values) or len(set(values)) < len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct positive multiples of the base budget")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="one of the paper's experiments end to end: train, evaluate, tables, plots, report",
        description="Runs reuse finished work: rerun the same command to resume an interrupted study.",
    )
    p.add_argument(
        "name",
        choices=list(STUDIES),
        help="depth: growth series by depth; nine-layer: constructive vs "
        "monolithic; compose: two experts and their compositions (logit/probability averaging, posterior, "
        "fixed-share); "
        "growth-operators: ways to grow to nine blocks against monolithic at equal FLOPs; "
        "continual: add a language to a trained model (growth, fine-tuning, replay, composition) at equal FLOPs",
    )
    p.add_argument(
        "--scale",
        choices=("cpu", "paper", "smoke"),
        default="cpu",
        help="cpu (default): 2 CPU cores, at most 2 h (depth), about 2.5 h (nine-layer), about 1 h idle (compose), "
        "about 40 min (growth-operators; with --budgets 0.25,1,4 about 3 h), about 2 h 45 min (continual); paper: "
        "the paper's sizes, for GPUs; smoke: tiny, seconds, to check an install",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        help="training seeds per variant (nine-layer and growth-operators: "
        "5 at cpu scale, 3 for a growth-operators ladder, 2 at smoke scale; otherwise 1)",
    )
    p.add_argument(
        "--substrate",
        choices=("visual", "binary"),
        default="visual",
        help="growth-operators: the frozen substrate every arm uses (default visual)",
    )
    p.add_argument(
        "--budgets",
        type=_budgets,
        default=(1.0,),
        metavar="B,B,...",
        help="growth-operators: a budget ladder, multiples of the scale's base budget (e.g. 0.25,1,4): every arm "
        "trains a complete schedule per budget and is compared by final losses at each (default 1)",
    )
    p.add_argument(
        "--arms",
        type=_names,
        default=(),
        metavar="A,A,...",
        help="growth-operators: the arms to train, monolithic among them (default: all of them for one budget; "
        "monolithic, paper, lora, progressive, gstack for a ladder)",
    )
    p.add_argument(
        "--base-source",
        dest="base_sources",
        action="append",
        default=[],
        metavar="NAME",
        help="continual: a source of the first domain, the base model's (repeatable; default shakespeare, fortunes-en)",
    )
    p.add_argument(
        "--new-source",
        dest="new_sources",
        action="append",
        default=[],
        metavar="NAME",
        help="continual: a source of the domain added (repeatable; default fortunes-ru, libreoffice-help-ru)",
    )
    p.add_argument("--out", type=Path, help="study folder (default studies/NAME-SCALE)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run of the study, e.g. --set train.device='cuda' (repeatable)",
    )
    p.add_argument("--force", action="store_true", help="delete the study folder and start over")
    p.set_defaults(func=_study)


def _study(args) -> None:
    from growlm.errors import GrowlmError
    from growlm.study.options import StudyOptions, prepare_root

    if args.substrate != "visual" and args.name not in TAKES_SUBSTRATE:
        raise GrowlmError(
            f"--substrate applies to {', '.join(sorted(TAKES_SUBSTRATE))}; {args.name} sets its "
            "substrates itself: drop --substrate"
        )
    if (args.budgets != (1.0,) or args.arms) and args.name not in TAKES_LADDER:
        raise GrowlmError(f"--budgets and --arms apply to {', '.join(sorted(TAKES_LADDER))}: drop them")
    module = importlib.import_module(STUDIES[args.name])
    root = args.out or Path("studies") / f"{args.name}-{args.scale}"
    if (args.base_sources or args.new_sources) and args.name not in TAKES_SOURCES:
        raise GrowlmError(f"--base-source and --new-source apply to {', '.join(sorted(TAKES_SOURCES))}: drop them")
    ladder = args.name in TAKES_LADDER
    seeds = args.seeds or (
        module.default_seeds(args.scale, args.budgets) if ladder else module.SCALES[args.scale].seeds
    )
    # Validate the config before touching the folder, so a bad --set never costs an earlier study.
    opts = StudyOptions(
        root,
        args.scale,
        seeds,
        args.sets,
        args.substrate,
        args.budgets,
        args.arms,
        tuple(args.base_sources),
        tuple(args.new_sources),
    )
    if args.name in TAKES_SOURCES:
        module.base_config(args.scale, args.sets, opts.base_sources, opts.new_sources)
    elif ladder:
        module.base_config(args.scale, args.sets, args.substrate, args.budgets, args.arms)
    else:
        module.base_config(args.scale, args.sets, *([args.substrate] if args.name in TAKES_SUBSTRATE else []))
    prepare_root(root, args.force)
    report = module.run(opts)
    print(f"study {args.name} done: {root}, report {report}")
