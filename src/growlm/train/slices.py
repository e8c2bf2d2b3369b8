"""Frozen slices: in a widening stage that keeps the earlier weights frozen, the old rows and columns of every
earlier block (growlm.model.widen.old_slices) do not train while the new ones do, in the same tensors.

A gradient mask, not a copy: after the backward pass the gradient of every frozen entry is set to 0, so AdamW's
moments stay 0 there and its update is exactly 0. AdamW's decoupled weight decay would still shrink them, so these
tensors sit in groups without weight decay and `decay` applies the same decay (p x (1 - lr x weight_decay), as
torch's AdamW does before its update) to their trainable entries only. Under FSDP2 each process masks its own shard.
The head (final norm, LM head) trains whole, as after a growth in depth; the embedding is the frozen substrate.
"""

from __future__ import annotations

import torch

Region = tuple[slice, ...]


def old_block_regions(plan, k: int) -> dict[str, Region]:
    """Stage k's frozen slices by parameter name: the old region of every parameter of the earlier blocks, when
    the stage widens with frozen earlier weights (else none)."""
    from growlm.model.llama import llama_config
    from growlm.model.widen import old_slices

    if not plan.freezes_old_slices(k):
        return {}
    old_depth = len(plan.old_blocks(k))
    before = llama_config(plan.models[k - 1], old_depth)
    after = llama_config(plan.models[k], plan.depths[k])
    blocks = tuple(f"model.layers.{i}." for i in range(old_depth))
    return {name: region for name, region in old_slices(before, after).items() if name.startswith(blocks)}


def frozen_mask(shape: torch.Size, region: Region) -> torch.Tensor:
    """True on the region's entries of a tensor of `shape`."""
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[region] = True
    return mask


def _local(t: torch.Tensor) -> torch.Tensor:
    """This process's share of a parameter or gradient (its FSDP2 shard), or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


class FrozenSlices:
    """The frozen slices of a stage's (possibly sharded) parameters; `params` are the live ones, after wrapping."""

    def __init__(self, named: dict[str, torch.nn.Parameter], regions: dict[str, Region], weight_decay: float):
        from torch.distributed.tensor import DTensor, distribute_tensor

        self.weight_decay = weight_decay
        self.masks: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        for name, region in regions.items():
            p = named[name]
            mask = frozen_mask(p.shape, region)
            if isinstance(p, DTensor):
                mask = distribute_tensor(mask.to(p.device_mesh.device_type), p.device_mesh, p.placements).to_local()
            self.masks.append((p, mask.to(_local(p).device)))

    @property
    def params(self) -> set[int]:
        return {id(p) for p, _ in self.masks}

    def __bool__(self) -> bool:
        return bool(self.masks)

    @torch.no_grad()
    def zero_grads(self) -> None:
        """Zero the gradient of every frozen entry (before clipping, so the norm is the trained entries')."""
        for p, mask in self.masks:
            if p.grad is not None:
                _local(p.grad).masked_fill_(mask, 0.0)

    @torch.no_grad()
    def decay(self, optimizer: torch.optim.Optimizer) -> None:
        """Decoupled weight decay on the trainable entries of the matrices, with each one's group learning rate."""
        if not self.weight_decay:
            return
        lr = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
        for p, mask in self.masks:
            if p.ndim < 2:  # vectors (RMSNorm weights) are never decayed (growlm.train.stage.optimizer)
                continue
            local = _local(p)
            local.mul_(torch.where(mask, 1.0, 1.0 - lr[id(p)] * self.weight_decay).to(local.dtype))
