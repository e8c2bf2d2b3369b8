"""How a stage's model is spread over the processes of a run: one process, DDP replicas, or FSDP2 shards.

- "single": one process, the plain model.
- "ddp": every process holds the whole model; DistributedDataParallel averages the gradients.
- "fsdp": FSDP2 (`torch.distributed.fsdp.fully_shard`) shards every parameter, frozen ones included, over the
  processes: each decoder block is a unit (gathered for its forward and backward, resharded after), the input
  embedding is one, and the root is the training forward (LossModel) itself, holding the final norm and the LM head,
  which the fused loss reads directly. On CUDA with bf16 the units compute in bf16 and reduce gradients in fp32
  (MixedPrecisionPolicy); elsewhere in fp32 (a CPU run's bf16 autocast is unchanged).

Whatever the mode, what leaves a stage is the same: full tensors under the plain model's names (`model_state`) and
the optimizer state keyed by parameter name (`optimizer_state`), so a checkpoint written by any number of
processes in any mode resumes under any other, and the exported model is the single-process one.
"""

from __future__ import annotations

import torch

from growlm.config import RunConfig
from growlm.model.llama import base_model
from growlm.train.dist import Dist

MODES = ("single", "ddp", "fsdp")


def choose(cfg: RunConfig, d: Dist) -> tuple[str, str]:
    """(mode, why) for this run: train.parallel, or under "auto" DDP when a replica fits the device, else FSDP2."""
    from growlm.train.memory import shortfall

    if d.world == 1:
        return "single", "one process"
    if cfg.train.parallel != "auto":
        return cfg.train.parallel, f"train.parallel = {cfg.train.parallel!r}"
    problem = d.from_main(shortfall(cfg, d, sharded=False))
    if problem is None:
        return "ddp", "auto: a replica fits the device"
    return "fsdp", f"auto: a replica does not fit ({problem})"


def _unwrap_prefix(state: dict, prefix: str = "lm.") -> dict:
    return {name.removeprefix(prefix): value for name, value in state.items()}


class Parallel:
    """The mode of one run over its processes; `wrap` turns a stage's LossModel into what trains."""

    def __init__(self, mode: str, d: Dist, bf16: bool):
        self.mode, self.d, self.bf16 = mode, d, bf16
        self._mesh = None

    @property
    def sharded(self) -> bool:
        return self.mode == "fsdp"

    def mesh(self):
        if self._mesh is None:
            from torch.distributed.device_mesh import init_device_mesh

            self._mesh = init_device_mesh(self.d.device.type, (self.d.world,))
        return self._mesh

    def wrap(self, loss_model: torch.nn.Module) -> torch.nn.Module:
        """The module whose forward trains: loss_model itself (sharded in place under fsdp), or its DDP wrapper.
        Build the optimizer after this: FSDP2 replaces the parameters with their shards."""
        if self.mode == "ddp":
            return torch.nn.parallel.DistributedDataParallel(loss_model)
        if self.mode == "fsdp":
            self._shard(loss_model)
        return loss_model

    def _shard(self, loss_model: torch.nn.Module) -> None:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        if self.bf16 and self.d.device.type == "cuda":
            policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        else:
            policy = MixedPrecisionPolicy()
        llama = base_model(loss_model.lm).model
        for block in llama.layers:
            fully_shard(block, mesh=self.mesh(), mp_policy=policy)
        fully_shard(llama.embed_tokens, mesh=self.mesh(), mp_policy=policy)
        fully_shard(loss_model, mesh=self.mesh(), mp_policy=policy)

    def no_sync(self, forward: torch.nn.Module):
        """Skip the gradient all-reduce of a micro-batch that is not the last of its step (DDP only: FSDP2
        reduce-scatters every micro-batch's gradients into the shards)."""
        import contextlib

        return forward.no_sync() if self.mode == "ddp" else contextlib.nullcontext()

    def model_state(self, loss_model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Every tensor of the stage's (LoRA-wrapped) model, whole, by its plain name, on every process (a
        collective under fsdp: every process calls it)."""
        if not self.sharded:
            return {k: v.detach() for k, v in loss_model.lm.state_dict().items()}
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(loss_model, options=StateDictOptions(full_state_dict=True))
        return {k: v.detach().cpu() for k, v in _unwrap_prefix(full).items()}

    def optimizer_state(self, loss_model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
        """The optimizer's state keyed by parameter name, whole tensors (a collective under fsdp)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(loss_model, opt, options=StateDictOptions(full_state_dict=True))

    def load_optimizer_state(self, loss_model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
        """Load `optimizer_state`'s output (written under any mode and world size); each process keeps its share."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(
            loss_model, opt, optim_state_dict=state, options=StateDictOptions(full_state_dict=True)
        )
