"""`growlm` command line: each verb lives in growlm/commands/<verb>.py and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from growlm import __version__
from growlm.errors import GrowlmError

# Each module defines register(subparsers); its parsers set `func` to a callable taking the parsed args.
COMMAND_MODULES = [
    "growlm.commands.analyze",
    "growlm.commands.compose",
    "growlm.commands.data",
    "growlm.commands.eval",
    "growlm.commands.generate",
    "growlm.commands.report",
    "growlm.commands.study",
    "growlm.commands.substrate",
    "growlm.commands.tokenizer",
    "growlm.commands.grow",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="growlm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"growlm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # growlm prints its own progress; transformers' loading bars and length warnings (growlm truncates to the
    # model's window itself) only add noise.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except GrowlmError as err:
        print(f"growlm {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"growlm {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
