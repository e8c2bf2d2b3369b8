"""Load any model folder for scoring or generation: a plain Hugging Face causal LM, or a growlm composition."""

from __future__ import annotations

from pathlib import Path

from growlm.errors import GrowlmError


def device_for(name: str = "auto") -> str:
    """The device to run a model on: `name`, or for "auto" cuda when available, else cpu."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_lm(path: str | Path, device: str = "cpu"):
    """(model, tokenizer) for a model folder; never runs code shipped with the model, never downloads."""
    from growlm.composition.folder import is_composition, load_composed
    from growlm.model.folder import load_model, load_tokenizer

    path = Path(path)
    if not path.is_dir():
        raise GrowlmError(f"model folder {path} does not exist; give an exported model (growlm export) or a run stage")
    tokenizer = load_tokenizer(path)
    if is_composition(path):
        return load_composed(path, device), tokenizer
    return load_model(path, device), tokenizer
