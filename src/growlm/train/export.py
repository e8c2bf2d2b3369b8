"""Turning any training checkpoint into an exported model folder (LoRA adapters merged).

Rebuilt from the run's plan alone: the checkpoint holds every tensor (the substrate included), so nothing is
prepared, measured or trained.
"""

from __future__ import annotations

from pathlib import Path

from growlm.errors import GrowlmError
from growlm.io.outputs import check_replaceable
from growlm.model.folder import stage_meta, write_model
from growlm.tokenizer import load_tokenizer
from growlm.train import checkpoint as ckpt
from growlm.train.lora import merge_lora
from growlm.train.rundir import RunDir


def export_checkpoint(checkpoint: Path, out: Path, force: bool) -> Path:
    if not (checkpoint / ckpt.STATE_FILE).is_file():
        raise GrowlmError(f"{checkpoint} is not a checkpoint folder (no {ckpt.STATE_FILE}); look in RUN/checkpoints/")
    check_replaceable(out, force)  # before the model is rebuilt
    problem = ckpt.damage(checkpoint)
    if problem:
        raise GrowlmError(f"checkpoint {checkpoint} is damaged ({problem}); export an intact one")
    run = RunDir(checkpoint.parent.parent)
    cfg = run.read_config()
    restored, state = ckpt.restore(cfg, checkpoint)
    model = merge_lora(restored.model) if restored.rank else restored.model
    tokenizer = load_tokenizer(cfg.tokenizer.path or run.tokenizer)
    substrate_sha256 = run.read_manifest()["hashes"]["substrate"]
    meta = {
        **stage_meta(cfg.substrate.kind, substrate_sha256, state.stage + 1, cfg.name),
        "checkpoint": checkpoint.name,
    }
    return write_model(model, tokenizer, out, meta, force=force)
