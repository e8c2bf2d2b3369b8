"""growlm study NAME [--scale S] [--seeds N] [--out DIR] [--set KEY=VALUE ...] [--force] [the study's options].

The verb knows no study by name: it lists growlm.study.registry's entries and builds each study's options from
its typed `StudyOptions` subclass when that study is asked for (`growlm study NAME --help`)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from growlm.commands.args import positive_int, verb_flags
from growlm.errors import GrowlmError


def register(sub: argparse._SubParsersAction) -> None:
    from growlm.study.registry import ENTRIES

    p = sub.add_parser(
        "study",
        help="one experiment end to end: train, evaluate, tables, plots, report",
        description="Runs reuse finished work: rerun the same command to resume an interrupted study. Studies: "
        + "; ".join(f"{e.name}: {e.summary}" for e in ENTRIES.values())
        + ". `growlm study NAME --help` gives a study's scales and options.",
    )
    p.add_argument("name", metavar="NAME", choices=list(ENTRIES), help=", ".join(ENTRIES))
    p.add_argument("options", nargs=argparse.REMAINDER, help="the study's options (growlm study NAME --help)")
    p.set_defaults(func=_study)


class _Parser(argparse.ArgumentParser):
    """A study's own parser: bad options become a GrowlmError (one line, exit 2) like every other input error."""

    def error(self, message: str) -> typing.NoReturn:
        raise GrowlmError(f"{message}; see {self.prog} --help")


def study_parser(study) -> argparse.ArgumentParser:
    p = _Parser(prog=f"growlm study {study.name}", description=_entry(study.name).summary)
    p.add_argument(
        "--scale",
        choices=list(study.scales),
        default=next(iter(study.scales)),
        help="; ".join(f"{name}: {scale.about}" for name, scale in study.scales.items()),
    )
    p.add_argument("--seeds", type=positive_int, help="training seeds per arm (default: the scale's)")
    p.add_argument("--out", type=Path, help=f"study folder (default studies/{study.name}-SCALE)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run of the study, e.g. --set train.device='cuda' (repeatable)",
    )
    p.add_argument("--force", action="store_true", help="delete the study folder and start over")
    for f in study.own_options():
        _add_option(p, f)
    return p


def _add_option(p: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    meta = f.metadata
    flag = meta.get("flag", "--" + f.name.replace("_", "-"))
    kwargs = {"dest": f.name, "help": meta.get("help"), "metavar": meta.get("metavar")}
    if meta.get("repeat"):
        kwargs.update(action="append", default=[])
    else:
        kwargs.update(default=f.default, type=meta.get("parse"), choices=meta.get("choices"))
    p.add_argument(flag, **{k: v for k, v in kwargs.items() if v is not None or k == "default"})


def _entry(name: str):
    from growlm.study.registry import ENTRIES

    return ENTRIES[name]


def _study(args) -> None:
    import growlm

    study = growlm.study_definition(args.name)
    parser = study_parser(study)
    try:  # the study's own flags are unknown to the top-level parser: its errors are rendered here
        ns = parser.parse_args(args.options)
        own = {f.name: tuple(v) if isinstance(v := getattr(ns, f.name), list) else v for f in study.own_options()}
        report = growlm.run_study(
            args.name, ns.scale, ns.out, seeds=ns.seeds, overrides=ns.overrides, force=ns.force, **own
        )
    except GrowlmError as err:
        raise GrowlmError(err.render(verb_flags(parser, argparse.Namespace()))) from None
    print(f"study {args.name} done: {ns.out or Path('studies') / f'{args.name}-{ns.scale}'}, report {report}")
