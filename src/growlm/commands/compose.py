"""growlm compose: merge experts grown on one frozen substrate into a composed model (optionally calibrated)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from growlm.commands.args import add_device_option

# growlm.composition.mixing.MODES, spelled out so that the CLI starts without torch (tests/test_compose.py checks)
MODES = ("mean_logits", "mean_probs", "posterior")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compose",
        help="merge experts on one frozen substrate: averaged outputs, or weighted by "
        "each expert's posterior given the text so far",
    )
    p.add_argument("experts", nargs="+", metavar="EXPERT_DIR", help="exported model folders (two or more)")
    p.add_argument("--out", required=True, help="composed model folder to write")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="mean_logits",
        help="mean_logits: weighted mean of logits (the paper); mean_probs: log of weighted mean of "
        "probabilities; posterior: mixture of probabilities weighted by each expert's posterior "
        "given the text so far (Bayesian model averaging; --weights is the prior) "
        "(default mean_logits)",
    )
    p.add_argument(
        "--weights",
        type=_weights,
        help="comma-separated, one per expert, normalised to sum 1; the prior in the posterior mode (default equal)",
    )
    p.add_argument(
        "--switch-rate",
        type=float,
        default=0.0,
        metavar="ALPHA",
        help="posterior mode: share of weight redistributed to the prior after every token (fixed-share), "
        "so the mixture follows text that changes language; 0 = plain Bayesian averaging "
        "(default 0; e.g. 0.01)",
    )
    p.add_argument(
        "--copy",
        action="store_true",
        help="copy the experts into the folder (self-contained) instead of referencing them by path",
    )
    p.add_argument(
        "--calibrate-on",
        nargs="+",
        metavar="TEXT_FILE",
        help="UTF-8 text files (e.g. one validation file per language): learn the mixing weights (the "
        "prior and the switch rate in the posterior mode) on an equal number of tokens from each, "
        "experts frozen",
    )
    p.add_argument("--calibrate-tokens", type=int, default=16384, help="calibration tokens in all (default 16384)")
    p.add_argument("--calibrate-steps", type=int, default=40, help="optimizer steps (default 40)")
    add_device_option(p, help="device for calibration: auto, cpu, cuda, ... (default auto)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_run)


def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _fmt(weights: Sequence[float]) -> str:
    return ",".join(f"{w:.3f}" for w in weights)


def _run(args) -> None:
    from growlm.api import compose
    from growlm.loading import device_for

    composition = compose(
        args.experts,
        args.out,
        args.mode,
        args.weights,
        force=args.force,
        copy=args.copy,
        calibrate_on=args.calibrate_on,
        calibrate_tokens=args.calibrate_tokens,
        calibrate_steps=args.calibrate_steps,
        device=device_for(args.device),
        switch_rate=args.switch_rate,
    )
    calibration = composition.calibration
    if calibration is not None:
        print(
            f"calibration: loss {calibration.loss_before:.4f} -> {calibration.loss_after:.4f} nats/token on "
            f"{calibration.tokens} tokens; weights {_fmt(calibration.initial_weights)} -> "
            f"{_fmt(calibration.weights)}"
            + (
                f"; switch rate {calibration.initial_switch_rate:.4g} -> {calibration.switch_rate:.4g}"
                if calibration.switch_rate is not None
                else ""
            )
        )
    how = "copied into" if args.copy else "referenced from"
    rate = f", switch rate {composition.switch_rate:.4g}" if args.mode == "posterior" else ""
    print(
        f"composed {len(args.experts)} experts ({args.mode}, weights {_fmt(composition.weights)}{rate}), "
        f"{how} {args.out}"
    )
