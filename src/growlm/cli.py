"""`growlm` command line: each verb lives in growlm/commands/<verb>.py and registers itself here."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from safetensors import SafetensorError

from growlm import __version__
from growlm.commands.args import verb_flags
from growlm.errors import GrowlmError

# Each module defines register(subparsers); its parsers set `func` to a callable taking the parsed args.
COMMAND_MODULES = [
    "growlm.commands.analyze",
    "growlm.commands.compose",
    "growlm.commands.config",
    "growlm.commands.data",
    "growlm.commands.eval",
    "growlm.commands.generate",
    "growlm.commands.report",
    "growlm.commands.study",
    "growlm.commands.substrate",
    "growlm.commands.tokenizer",
    "growlm.commands.grow",
    "growlm.commands.plan",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_text_arguments(args)
        result = args.func(args)
    except GrowlmError as err:
        print(f"growlm {args.command}: error: {err.render(verb_flags(parser, args))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"growlm {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except Exception as err:
        if not _disk_full(err):
            raise
        where = f" writing {err.filename}" if getattr(err, "filename", None) else ""
        print(
            f"growlm {args.command}: error: no space left on the device{where}; temporary files were removed, "
            f"nothing half-written was kept; free some space, then run the same command again"
            f"{_resume_hint(args)}",
            file=sys.stderr,
        )
        return 2
    return int(result or 0)


def _disk_full(err: Exception) -> bool:
    """A full disk or quota, raised as OSError or by safetensors' Rust writer (which reports the OS error code)."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, SafetensorError) and any(
        f"(os error {code})" in str(err) for code in (errno.ENOSPC, errno.EDQUOT)
    )


def _check_text_arguments(args) -> None:
    """Text given on the command line (a prompt, a stop text, a text to encode) must be valid UTF-8; Python hands
    undecodable bytes over as surrogates, which would fail deep inside the tokenizer."""
    for name in ("prompt", "stop", "text"):
        values = getattr(args, name, None)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
                what = "the text to encode" if name == "text" else f"--{name}"
                raise GrowlmError(f"{what} is not valid UTF-8 (undecodable bytes); pass the text in UTF-8")


def _resume_hint(args) -> str:
    if args.command == "grow":
        return f" (to continue the run: growlm grow --resume --out {args.out or 'runs/<name>'})"
    return ""
