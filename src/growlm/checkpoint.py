"""Training checkpoints: everything needed to continue a run exactly.

RUN/checkpoints/step-<global step>/ holds model.safetensors (the training model's state dict, adapters
included), optimizer.pt (AdamW state, loaded with weights_only=True), rng.pt (torch CPU/CUDA generator states)
and state.json (stage index, steps, tokens, FLOPs, whether the stage is complete). Each is written into a temp
folder that is renamed into place; RUN/checkpoints/latest names the newest complete one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from growlm.errors import GrowlmError
from growlm.io import atomic_dir, atomic_write_text


def save_checkpoint(run: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, state: dict,
                    keep: int) -> Path:
    root = run / "checkpoints"
    name = f"step-{state['global_step']:08d}" + ("-stage-end" if state.get("stage_complete") else "")
    with atomic_dir(root / name, force=True) as tmp:
        tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, tmp / "model.safetensors")
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    atomic_write_text(root / "latest", name + "\n")
    for old in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return root / name


def latest_checkpoint(run: Path) -> Path | None:
    pointer = run / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = run / "checkpoints" / pointer.read_text().strip()
    return path if (path / "state.json").is_file() else None


def read_state(ckpt: Path) -> dict:
    return json.loads((ckpt / "state.json").read_text())


def load_model_state(ckpt: Path, model: torch.nn.Module) -> None:
    tensors = load_file(ckpt / "model.safetensors")
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise GrowlmError(f"checkpoint {ckpt} does not fit the model (missing {missing[:3]}, unexpected "
                          f"{unexpected[:3]}); was the config changed? resume with the run's own config")


def load_optimizer_state(ckpt: Path, optimizer: torch.optim.Optimizer) -> None:
    if (ckpt / "optimizer.pt").is_file():
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))


def restore_rng(ckpt: Path) -> None:
    rng = torch.load(ckpt / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])

