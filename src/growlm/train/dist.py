"""Processes of one run: a single process, or torchrun's (gloo on CPU, NCCL on CUDA; one node or several).

A process that waits on a collective longer than `timeout_s` (another rank died or hangs) raises instead of
waiting for ever; torchrun then stops the rest of the job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from growlm.errors import GrowlmError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def from_main(self, obj):
        """Rank 0's `obj` on every process (so decisions measured per process agree)."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean_tensor(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over all processes, left on the device (no wait for the host)."""
        if self.world > 1:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.world
        return value


def init_distributed(device_pref: str, timeout_s: int = 600) -> Dist:
    use_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise GrowlmError("train.device = 'cuda' but no CUDA device is visible; use train.device = 'cpu'")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(rank, world, torch.device(f"cuda:{local}" if use_cuda else "cpu"))
