"""Turning any training checkpoint into a plain Hugging Face model folder (LoRA adapters merged)."""

from __future__ import annotations

from pathlib import Path

from growlm import checkpoint as ckpt
from growlm.config import load_config
from growlm.errors import GrowlmError
from growlm.growth import merge_lora
from growlm.model import export_model
from growlm.run import resolve_inputs
from growlm.train import Dist, Trainer


def export_checkpoint(checkpoint: Path, out: Path, force: bool) -> Path:
    if not (checkpoint / "state.json").is_file():
        raise GrowlmError(f"{checkpoint} is not a checkpoint folder (no state.json); look in RUN/checkpoints/")
    run = checkpoint.parent.parent
    cfg = load_config(run / "config.resolved.toml")
    state = ckpt.read_state(checkpoint)
    inputs = resolve_inputs(cfg, run)
    trainer = Trainer(cfg, run, inputs, Dist())
    k = state["stage"]
    model = trainer.new_model(trainer.depths[k])
    rank = 0
    if not state["stage_complete"]:
        model, _, rank = trainer.setup_stage(model, k)
    ckpt.load_model_state(checkpoint, model)
    if rank:
        model = merge_lora(model)
    sub = inputs.substrate
    meta = {"substrate": {"kind": cfg.substrate.kind, "sha256": sub.sha256 if sub is not None else None},
            "stage": k + 1, "run": cfg.name, "checkpoint": checkpoint.name}
    return export_model(model, inputs.tokenizer, out, meta, force=force)
