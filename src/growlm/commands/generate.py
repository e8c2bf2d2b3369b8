"""growlm generate: stream a continuation of a prompt from a plain or composed model."""

from __future__ import annotations

import argparse
import sys

from growlm.commands.args import add_device_option, finite_float


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate text from a model folder (plain or composed), streamed")
    p.add_argument("model", metavar="MODEL", help="exported or composed model folder")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-new-tokens", type=int, default=128, help="default 128")
    p.add_argument("--temperature", type=finite_float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens; 0 = all (default)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95; 1 = off)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same text (default 0)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop before this text (repeatable)")
    add_device_option(p)
    p.set_defaults(func=_run)


def _run(args) -> None:
    from growlm.api import stream

    pieces = stream(
        args.model,
        args.prompt,
        args.device,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=args.stop,
    )
    sys.stdout.write(args.prompt)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
