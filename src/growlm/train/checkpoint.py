"""Training checkpoints: everything needed to continue a run exactly.

RUN/checkpoints/step-<global step>[-stage-end]/ holds model.safetensors (the training model's state dict, adapters
included, whole tensors), optimizer.pt (AdamW state keyed by parameter name, whole tensors: it resumes under any
number of processes and any growlm.train.parallel mode; loaded with weights_only=True), rng.pt (torch CPU/CUDA
generator states)
and state.json (stage index, steps, tokens, FLOPs, whether the stage is complete, and the sha256 of each other
file). Each is written into a temp folder that is renamed into place; RUN/checkpoints/latest names the newest.
At least two are kept. A resume takes the newest whose files match their recorded hashes, warning about any newer
damaged one; a stage-end checkpoint is written only after the stage's model is exported.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from growlm.config import RunConfig
from growlm.errors import GrowlmError
from growlm.faults import crash_point
from growlm.io.atomic import atomic_write_text, read_json
from growlm.io.hashing import sha256_file
from growlm.io.outputs import atomic_dir
from growlm.train.plan import Plan
from growlm.train.records import CheckpointState
from growlm.train.stage import StageModel, rebuild

FILES = ("model.safetensors", "optimizer.pt", "rng.pt")
STATE_FILE = "state.json"


def save_checkpoint(
    root: Path, tensors: dict[str, torch.Tensor], optimizer: dict | None, state: CheckpointState, keep: int
) -> Path:
    """Write a checkpoint into `root` (RUN/checkpoints), point `latest` at it, keep the newest max(keep, 2).
    `tensors` and `optimizer` are growlm.train.parallel's model_state and optimizer_state."""
    name = f"step-{state.progress.step:08d}" + ("-stage-end" if state.stage_complete else "")
    with atomic_dir(root / name, force=True, kind="checkpoint") as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp / "model.safetensors")
        if optimizer is not None:
            torch.save(optimizer, tmp / "optimizer.pt")
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        hashes = {f: sha256_file(tmp / f) for f in FILES if (tmp / f).is_file()}
        (tmp / STATE_FILE).write_text(json.dumps({**state.to_json(), "sha256": hashes}, indent=2, sort_keys=True))
        crash_point("checkpoint")
    atomic_write_text(root / "latest", name + "\n")
    for old in checkpoints(root)[: -max(keep, 2)]:
        shutil.rmtree(old, ignore_errors=True)
    return root / name


def checkpoints(root: Path) -> list[Path]:
    """Every checkpoint folder, oldest first."""
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")) if root.is_dir() else []


def damage(ckpt: Path) -> str | None:
    """What is wrong with a checkpoint folder, or None when its files match their recorded hashes."""
    try:
        raw = _state_json(ckpt)
        CheckpointState.from_json(raw, str(ckpt / STATE_FILE))
    except GrowlmError as err:
        return str(err)
    for name, recorded in raw.get("sha256", {}).items():
        if not (ckpt / name).is_file():
            return f"{name} is missing"
        if sha256_file(ckpt / name) != recorded:
            return f"{name} does not match its recorded sha256 (truncated or changed)"
    return None


def latest_checkpoint(root: Path) -> Path | None:
    """The newest intact checkpoint (warning about newer damaged ones); None when there is none at all."""
    found = checkpoints(root)
    damaged = []
    for ckpt in reversed(found):
        problem = damage(ckpt)
        if problem is None:
            for bad, why in damaged:
                print(
                    f"growlm: warning: checkpoint {bad} is damaged ({why}); using {ckpt.name} instead", file=sys.stderr
                )
            return ckpt
        damaged.append((ckpt, problem))
    if damaged:
        bad, why = damaged[0]
        raise GrowlmError(
            f"no intact checkpoint in {root} (newest: {bad.name}: {why}); start the run over with "
            "`force`, or restore the checkpoint files"
        )
    return None


def _state_json(ckpt: Path) -> dict:
    state = read_json(ckpt / STATE_FILE, "the checkpoint is incomplete", dict)
    if not {"stage", "stage_step", "global_step"} <= state.keys():
        raise GrowlmError(f"{ckpt / STATE_FILE} is damaged (missing stage/step fields)")
    return state


def read_state(ckpt: Path) -> CheckpointState:
    return CheckpointState.from_json(_state_json(ckpt), str(ckpt / STATE_FILE))


def _load(ckpt: Path, name: str, loader):
    try:
        return loader(ckpt / name)
    except Exception as err:  # safetensors, pickle and zip errors of a damaged file
        raise GrowlmError(
            f"{ckpt / name} cannot be read ({type(err).__name__}); the checkpoint is damaged: "
            "delete it to resume from the one before"
        ) from None


def load_optimizer_state(ckpt: Path, loss_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
    """The checkpoint's optimizer state keyed by parameter name (growlm.train.parallel.optimizer_state's form),
    or None when it has none. Checkpoints of growlm before it keyed the state by position in the optimizer's
    groups: those are translated, the groups being built in the same order."""
    if not (ckpt / "optimizer.pt").is_file():
        return None
    state = _load(ckpt, "optimizer.pt", lambda f: torch.load(f, weights_only=True))
    if all(isinstance(key, str) for key in state["state"]):
        return state
    names = {id(p): name for name, p in loss_model.named_parameters()}
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    return {
        "state": {order[i]: value for i, value in state["state"].items()},
        "param_groups": [
            {**g, "params": [order[i] for i in g["params"]]} for g in state["param_groups"] if g["params"]
        ],
    }


def restore_rng(ckpt: Path) -> None:
    rng = _load(ckpt, "rng.pt", lambda f: torch.load(f, weights_only=True))
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def restore(cfg: RunConfig, ckpt: Path, embedding: torch.Tensor | None = None) -> tuple[StageModel, CheckpointState]:
    """The model a checkpoint holds, as it was being trained: after a finished stage the plain model; inside a
    stage the model set up for it (frozen blocks, LoRA adapters). The checkpoint has every tensor, the substrate
    included, so `embedding` only spares building a random one first."""
    state = read_state(ckpt)
    tensors = _load(ckpt, "model.safetensors", load_file)
    try:
        return rebuild(Plan(cfg), state.stage, state.stage_complete, tensors, embedding), state
    except GrowlmError as err:
        raise GrowlmError(f"checkpoint {ckpt}: {err}") from None
