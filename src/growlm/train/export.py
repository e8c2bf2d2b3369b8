"""Turning any training checkpoint into an exported model folder (LoRA adapters merged).

Rebuilt from the run's plan alone: the checkpoint holds every tensor (the substrate included), so nothing is
prepared, measured or trained.
"""

from __future__ import annotations

from pathlib import Path

from growlm.errors import GrowlmError
from growlm.io import check_replaceable
from growlm.model.folder import write_model
from growlm.model.llama import build_model
from growlm.tokenizer import load_tokenizer
from growlm.train import checkpoint as ckpt
from growlm.train.lora import merge_lora
from growlm.train.plan import Plan, stage_meta
from growlm.train.rundir import RunDir


def export_checkpoint(checkpoint: Path, out: Path, force: bool) -> Path:
    if not (checkpoint / "state.json").is_file():
        raise GrowlmError(f"{checkpoint} is not a checkpoint folder (no state.json); look in RUN/checkpoints/")
    check_replaceable(out, force)  # before the model is rebuilt
    problem = ckpt.damage(checkpoint)
    if problem:
        raise GrowlmError(f"checkpoint {checkpoint} is damaged ({problem}); export an intact one")
    run = RunDir(checkpoint.parent.parent)
    cfg = run.read_config()
    plan = Plan(cfg)
    state = ckpt.read_state(checkpoint)
    k = state["stage"]
    model, rank = build_model(cfg.model, plan.depths[k], None), 0
    if not state["stage_complete"]:
        model, _, rank = plan.setup_stage(model, k)
    ckpt.load_model_state(checkpoint, model)
    if rank:
        model = merge_lora(model)
    tokenizer = load_tokenizer(cfg.tokenizer.path or run.tokenizer)
    meta = {**stage_meta(cfg, run.read_manifest()["hashes"]["substrate"], k), "checkpoint": checkpoint.name}
    return write_model(model, tokenizer, out, meta, force=force)
