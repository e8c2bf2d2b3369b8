"""Training checkpoints: everything needed to continue a run exactly.

RUN/checkpoints/step-<global step>[-stage-end]/ holds
- inside a stage: shards/, a torch.distributed.checkpoint (DCP) folder with the stage's model and AdamW state
  ("model", "optimizer", keyed by parameter name): every process writes its own shard file (__RANK_0.distcp, FSDP2
  shards; a replicated tensor is written once) and rank 0 the .metadata; no process gathers the whole model. DCP
  reshards on load, so a checkpoint resumes under any number of processes and any growlm.train.parallel mode;
  `train.async_checkpoint` stages the state to host memory and writes it while training goes on;
- at a stage end: model.safetensors, the plain model every process holds there (no optimizer: the next stage
  starts its own);
- rng.pt (torch CPU/CUDA generator states, rank 0's) and state.json (stage index, steps, tokens, FLOPs, whether the
  stage is complete, and the sha256 of every other file).
A checkpoint is written into a temp folder that is renamed into place once every file is written and hashed (a
sharded one after every process has written its shard); RUN/checkpoints/latest names the newest. At least two are
kept. A resume takes the newest whose files match their recorded hashes, warning about any newer damaged one.
Checkpoints of earlier growlm versions (model.safetensors and optimizer.pt inside a stage, whole tensors, loaded
with weights_only=True) still resume.
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
from growlm.io.outputs import atomic_dir, commit_temp_dir, open_temp_dir
from growlm.train.plan import Plan
from growlm.train.records import CheckpointState
from growlm.train.stage import StageModel, rebuild

FILES = ("model.safetensors", "optimizer.pt", "rng.pt")
STATE_FILE = "state.json"
SHARDS = "shards"  # the DCP folder of a mid-stage checkpoint
PREFIX = "lm."  # a stage's state dict keys, as the training forward (LossModel) holds the model


def checkpoint_name(state: CheckpointState) -> str:
    return f"step-{state.progress.step:08d}" + ("-stage-end" if state.stage_complete else "")


def save_checkpoint(
    root: Path, tensors: dict[str, torch.Tensor], optimizer: dict | None, state: CheckpointState, keep: int
) -> Path:
    """Write a checkpoint of whole tensors (a stage end's plain model) into `root` (RUN/checkpoints), point
    `latest` at it, keep the newest max(keep, 2). `tensors` and `optimizer`: growlm.train.parallel's model_state
    and optimizer_state."""
    name = checkpoint_name(state)
    with atomic_dir(root / name, force=True, kind="checkpoint") as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp / "model.safetensors")
        if optimizer is not None:
            torch.save(optimizer, tmp / "optimizer.pt")
        _finish_files(tmp, state)
    return _point_latest(root, name, keep)


def _finish_files(tmp: Path, state: CheckpointState) -> None:
    """rng.pt, then state.json with the sha256 of every file in the folder (its subfolders too)."""
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    hashes = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in files}
    (tmp / STATE_FILE).write_text(json.dumps({**state.to_json(), "sha256": hashes}, indent=2, sort_keys=True))
    crash_point("checkpoint")


def _point_latest(root: Path, name: str, keep: int) -> Path:
    atomic_write_text(root / "latest", name + "\n")
    for old in checkpoints(root)[: -max(keep, 2)]:
        shutil.rmtree(old, ignore_errors=True)
    return root / name


def stage_state(loss_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The stage's model and AdamW state as DCP writes and reads them: this process's shards under FSDP2 (DTensors),
    the whole tensors otherwise, keyed by name (the optimizer's state initialised if it has none yet)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    return {"model": get_model_state_dict(loss_model), "optimizer": get_optimizer_state_dict(loss_model, optimizer)}


_SAVE_GROUP = []


def _save_group():
    """A gloo process group for background saves (made once, by every process alike), or None in one process."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return None
    if not _SAVE_GROUP:
        _SAVE_GROUP.append(dist.new_group(backend="gloo"))
    return _SAVE_GROUP[0]


class ShardedSave:
    """A mid-stage checkpoint that every process writes its own shard of (a collective: every process makes one
    and calls `finish`). With `background` (train.async_checkpoint), DCP stages the state to host memory and writes
    it in a thread; `finish` waits for it. The checkpoint exists (renamed into place, `latest` pointing at it) only
    once `finish` returns on rank 0 after every process's shard is written."""

    def __init__(self, root: Path, state: CheckpointState, keep: int, d, stage_state: dict, background: bool):
        import torch.distributed.checkpoint as dcp

        self.root, self.state, self.keep, self.d = root, state, keep, d
        self.out = root / checkpoint_name(state)
        self.tmp = d.from_main(open_temp_dir(self.out, force=True) if d.main else None)
        if background:  # its collectives run in a thread: on a process group of their own, not the training's
            self.future = dcp.async_save(stage_state, checkpoint_id=self.tmp / SHARDS, process_group=_save_group())
        else:
            self.future = dcp.save(stage_state, checkpoint_id=self.tmp / SHARDS)

    def finish(self) -> Path:
        if self.future is not None and hasattr(self.future, "result"):
            self.future.result()
        crash_point("shards")  # this process's shard is written; the checkpoint is not finished
        self.d.barrier()
        if self.d.main:
            _finish_files(self.tmp, self.state)
            commit_temp_dir(self.tmp, self.out, kind="checkpoint")
            _point_latest(self.root, self.out.name, self.keep)
        self.d.barrier()
        return self.out


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
    plan = Plan(cfg)
    try:
        if (ckpt / SHARDS).is_dir():  # sharded: read whole on every process (the trainer shards it again)
            prepared = rebuild(plan, state.stage, state.stage_complete, None, embedding)
            tensors = {PREFIX + k: v for k, v in prepared.model.state_dict().items()}
            _load(ckpt, SHARDS, lambda folder: _dcp_load({"model": tensors}, folder))
            prepared.model.load_state_dict({k.removeprefix(PREFIX): v for k, v in tensors.items()})
            return prepared, state
        tensors = _load(ckpt, "model.safetensors", load_file)
        return rebuild(plan, state.stage, state.stage_complete, tensors, embedding), state
    except GrowlmError as err:
        raise GrowlmError(f"checkpoint {ckpt}: {err}") from None


def _dcp_load(state: dict, folder: Path) -> None:
    import torch.distributed.checkpoint as dcp

    dcp.load(state, checkpoint_id=folder)


def load_sharded_optimizer(ckpt: Path, loss_model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> bool:
    """Load a sharded checkpoint's AdamW state into the (wrapped) stage, each process its own share; False when
    the checkpoint is not a sharded one (growlm.train.parallel.load_optimizer_state reads the older form)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    if not (ckpt / SHARDS).is_dir():
        return False
    state = {"optimizer": get_optimizer_state_dict(loss_model, optimizer)}
    _load(ckpt, SHARDS, lambda folder: _dcp_load(state, folder))
    set_optimizer_state_dict(loss_model, optimizer, optim_state_dict=state["optimizer"])
    return True
