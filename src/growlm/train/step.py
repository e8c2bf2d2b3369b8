"""The training forward: frozen prefix without autograd, trainable top, fused LM-head loss.

Wrapped as one nn.Module so that DistributedDataParallel can wrap it; it holds the (possibly LoRA-wrapped)
LlamaForCausalLM and uses the same layers, rotary embedding and norm as the HF forward, so the loss equals
cross-entropy of the HF model's logits.
"""

from __future__ import annotations

import contextlib

import torch

from growlm.model.llama import base_model, call_block, embed, run_blocks
from growlm.train.loss import Workspace, lm_head_loss


class LossModel(torch.nn.Module):
    def __init__(
        self,
        lm: torch.nn.Module,
        no_grad_blocks: int,
        ce_chunk: int,
        bf16: bool,
        compile: bool = False,
        compile_blocks: bool = False,
        recompute: bool = False,
    ):
        super().__init__()
        self.lm = lm
        self.no_grad_blocks = no_grad_blocks
        self.ce_chunk = ce_chunk
        self.bf16 = bf16
        self.compile = compile
        self.workspace = Workspace()  # the LM-head loss's chunk buffers, allocated once per stage
        # Inductor fuses each block's norm, rotary, SwiGLU and residual adds; one compiled function serves every
        # block of the same shape, so a deep stack compiles once.
        self.call_block = torch.compile(call_block, dynamic=False) if compile_blocks else call_block
        # activation checkpointing: the blocks that train keep only their input for the backward pass and run
        # their forward again there (non-reentrant: the reentrant form gives LoRA adapters no gradients,
        # transformers#26221); the frozen prefix runs without autograd and needs none
        self.trained_call = _recomputed(self.call_block) if recompute else self.call_block

    def _autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """batch: [B, T+1] token ids; returns the mean next-token loss over B x T positions."""
        inputs, targets = batch[:, :-1], batch[:, 1:]
        head = base_model(self.lm).lm_head
        return lm_head_loss(
            self.hidden_states(inputs).float(),
            head.weight,
            targets,
            self.ce_chunk,
            self.bf16,
            self.compile,
            self.workspace,
        )

    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """The final norm's output for inputs [B, T]: what the LM head reads."""
        llama, n = base_model(self.lm).model, self.no_grad_blocks
        with self._autocast(inputs.device):
            hidden, positions, rotary = embed(llama, inputs)
            with torch.no_grad():
                hidden = run_blocks(llama, hidden, positions, rotary, 0, n, self.call_block)
            trained = self.trained_call if torch.is_grad_enabled() else self.call_block
            hidden = run_blocks(llama, hidden, positions, rotary, n, None, trained)
            return llama.norm(hidden)


def _recomputed(call):
    """`call` (a block call) under non-reentrant activation checkpointing."""
    from torch.utils.checkpoint import checkpoint

    def run(block, hidden, positions, rotary):
        return checkpoint(call, block, hidden, positions, rotary, use_reentrant=False)

    return run
