"""Argument helpers shared by the CLI verbs: argparse types and options that several verbs take alike."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_device_option(p: argparse.ArgumentParser) -> None:
    """--device NAME, resolved with growlm.loading.device_for."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
