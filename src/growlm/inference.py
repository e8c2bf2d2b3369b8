"""Load a model folder for scoring or generation: a plain Hugging Face causal LM, or a growlm composition."""

from __future__ import annotations

from pathlib import Path

from growlm.errors import GrowlmError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def load_lm(path: str | Path, device: str = "cpu"):
    """(model, tokenizer) for a model folder; never runs code shipped with the model, never downloads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise GrowlmError(f"model folder {path} does not exist; give an exported model (growlm export) or a run stage")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise GrowlmError(f"{path} has no tokenizer (tokenizer.json); export the model with `growlm export` "
                          "or copy its tokenizer files into the folder")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    if (path / "composition.json").is_file():
        from growlm.compose import load_composed

        return load_composed(path, device), tokenizer
    if not (path / "config.json").is_file():
        raise GrowlmError(f"{path} has no config.json; it is not a Hugging Face model folder")
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    return model.to(device).eval(), tokenizer
