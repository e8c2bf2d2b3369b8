"""Argument helpers shared by the CLI verbs: argparse types and options that several verbs take alike."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a number that is not nan or infinite."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def device_name(text: str) -> str:
    """argparse type: auto, or a torch device this machine has (cpu, cuda, cuda:N, ...)."""
    if text == "auto":
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        raise argparse.ArgumentTypeError(
            f"{text} is not available on this machine ({torch.cuda.device_count()} "
            "CUDA devices); use --device cpu or auto"
        )
    return text


def add_device_option(p: argparse.ArgumentParser, help: str = "auto, cpu, cuda, ... (default auto)") -> None:
    """--device NAME, resolved with growlm.loading.device_for."""
    p.add_argument("--device", type=device_name, default="auto", help=help)


def verb_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """API parameter -> how the verb that ran spells it: the option's long flag, or a positional's metavar (the
    rendering of a GrowlmError's `parameter` names: growlm.errors)."""
    flags: dict[str, str] = {}
    while parser is not None:
        chosen = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(args, action.dest, None) or "")
            elif action.option_strings:
                flags.setdefault(action.dest, max(action.option_strings, key=len))
            elif action.dest != argparse.SUPPRESS:
                flags.setdefault(
                    action.dest, action.metavar if isinstance(action.metavar, str) else action.dest.upper()
                )
        parser = chosen
    return flags
