"""growlm compose: merge experts grown on one frozen substrate into a composed model (optionally calibrated)."""

from __future__ import annotations

import argparse
from pathlib import Path

from growlm.compose import MODES, ComposedModel, check_experts, compose, load_experts, normalize_weights
from growlm.errors import GrowlmError
from growlm.io import check_output, sha256_file

CALIBRATION_WINDOW = 256


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compose", help="merge experts on one frozen substrate by averaging their outputs")
    p.add_argument("experts", nargs="+", metavar="EXPERT_DIR", help="exported model folders (two or more)")
    p.add_argument("--out", required=True, help="composed model folder to write")
    p.add_argument("--mode", choices=MODES, default="mean_logits",
                   help="mean_logits: weighted mean of logits (the paper); mean_probs: log of weighted mean of "
                        "probabilities (default mean_logits)")
    p.add_argument("--weights", type=_weights, help="comma-separated, one per expert, normalised to sum 1 "
                                                    "(default equal)")
    p.add_argument("--copy", action="store_true",
                   help="copy the experts into the folder (self-contained) instead of referencing them by path")
    p.add_argument("--calibrate-on", nargs="+", metavar="TEXT_FILE",
                   help="UTF-8 text files (e.g. one validation file per language): learn the mixing weights on "
                        "an equal number of tokens from each, experts frozen")
    p.add_argument("--calibrate-tokens", type=int, default=16384, help="calibration tokens in all (default 16384)")
    p.add_argument("--calibrate-steps", type=int, default=40, help="optimizer steps (default 40)")
    p.add_argument("--device", default="auto", help="device for calibration: auto, cpu, cuda, ... (default auto)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.set_defaults(func=_run)


def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _calibration(args) -> dict:
    import torch

    from growlm.calibrate import calibrate, text_windows
    from growlm.tokenizer import load_tokenizer

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model = ComposedModel(load_experts(args.experts, device), args.weights, args.mode).to(device)
    tokenizer = load_tokenizer(args.experts[0])
    window = min(CALIBRATION_WINDOW, model.config.max_position_embeddings)
    per_file = args.calibrate_tokens // len(args.calibrate_on)
    windows, sources = [], []
    for file in map(Path, args.calibrate_on):
        if not file.is_file():
            raise GrowlmError(f"--calibrate-on {file}: no such file; give UTF-8 text files")
        windows += text_windows(tokenizer.encode(file.read_text(encoding="utf-8")), window, per_file)
        sources.append({"path": str(file), "sha256": sha256_file(file)})
    result = calibrate(model, windows, steps=args.calibrate_steps)
    print(f"calibration: loss {result['loss_before']:.4f} -> {result['loss_after']:.4f} nats/token on "
          f"{result['tokens']} tokens; weights {_fmt(result['initial_weights'])} -> {_fmt(result['weights'])}")
    return {**result, "sources": sources}


def _fmt(weights: list[float]) -> str:
    return ",".join(f"{w:.3f}" for w in weights)


def _run(args) -> None:
    check_output(args.out, args.force)
    check_experts(args.experts)
    normalize_weights(args.weights, len(args.experts))
    if args.calibrate_tokens <= 0 or args.calibrate_steps < 0:
        raise GrowlmError("--calibrate-tokens must be > 0 and --calibrate-steps >= 0")
    calibration = _calibration(args) if args.calibrate_on else None
    composition = compose(args.experts, args.out, args.mode, args.weights, args.force, args.copy, calibration)
    how = "copied into" if args.copy else "referenced from"
    print(f"composed {len(args.experts)} experts ({args.mode}, weights {_fmt(composition['weights'])}), "
          f"{how} {args.out}")
