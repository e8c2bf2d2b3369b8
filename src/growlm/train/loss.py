"""Fused LM-head + cross-entropy, computed chunk by chunk.

With V = 65,536 the head dominates small models: the full [tokens, V] float32 logits of one batch are often a
gigabyte. Here each chunk's logits are built, turned into the loss and into d(loss)/d(logits) at once, and the
gradients of the hidden states and of the head weight are accumulated during the forward pass; backward only
scales them. Memory holds one chunk of logits, and no matmul is recomputed.
Under bf16 the matmuls run in bfloat16 (softmax and accumulation stay float32). With `compile`, the elementwise
softmax/gradient part of each chunk is fused by torch.compile (about 3x faster on CPU than eager's separate passes).
On a CPU the chunk-sized tensors (logits, their gradient, the weight gradient's product) live in a Workspace reused
from chunk to chunk and step to step: a fresh 100+ MB tensor comes from mmap and is zeroed by the kernel page by
page on first touch, which costs more than the matmul that fills it. The values are the same bit for bit.
On CUDA, `lm_head_loss` hands the same computation to liger-kernel's Triton kernel when the optional extra is
installed (`pip install growlm[gpu]`), and falls back to this implementation otherwise.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch


def _loss_and_grad(logits: torch.Tensor, targets: torch.Tensor, out_dtype: torch.dtype):
    """Summed cross-entropy of one chunk and its gradient wrt the logits (softmax - one_hot).

    The one-hot is a comparison with the column index rather than a scatter, so the compiled version is a single
    fused pass that writes the gradient once (a scatter would make inductor write the float32 softmax, then read
    it back); the values are the same bit for bit.
    """
    logits = logits.float()
    target_logit = logits.gather(1, targets[:, None])
    peak = logits.amax(dim=-1, keepdim=True)
    exp = (logits - peak).exp()
    norm = exp.sum(dim=-1, keepdim=True)
    loss = (peak + norm.log() - target_logit).sum()
    is_target = torch.arange(logits.shape[1], device=logits.device)[None, :] == targets[:, None]
    grad = torch.where(is_target, exp / norm - 1, exp / norm)
    return loss, grad.to(out_dtype)


def _loss_and_grad_into(logits: torch.Tensor, targets: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """_loss_and_grad writing the gradient into `out` (compiled, the one pass stores straight into it)."""
    loss, grad = _loss_and_grad(logits, targets, out.dtype)
    out.copy_(grad)
    return loss


@functools.cache
def _compiled_loss_and_grad_into():
    return torch.compile(_loss_and_grad_into, dynamic=False)


def _chunk_fn(compile: bool):
    if not compile:
        return _loss_and_grad_into
    try:
        return _compiled_loss_and_grad_into()
    except Exception as err:  # no C++ toolchain for inductor: same maths, eager speed
        warnings.warn(f"torch.compile unavailable ({err}); the LM-head loss runs eagerly", stacklevel=2)
        return _loss_and_grad_into


class Workspace:
    """Named buffers that outlive a call: on a CPU, views of one allocation per name and dtype, grown when needed;
    elsewhere (a caching allocator already reuses memory) fresh tensors."""

    def __init__(self):
        self.buffers: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        if device.type != "cpu":
            return torch.empty(shape, dtype=dtype, device=device)
        n = math.prod(shape)
        buffer = self.buffers.get((name, dtype))
        if buffer is None or buffer.numel() < n:
            buffer = self.buffers[(name, dtype)] = torch.empty(n, dtype=dtype)
        return buffer[:n].view(shape)


class _FusedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, bf16: bool, compile: bool, space: Workspace):
        n, device = hidden.shape[0], hidden.device
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        mm_dtype = torch.bfloat16 if bf16 else hidden.dtype
        w = weight.to(mm_dtype)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        total = hidden.new_zeros((), dtype=torch.float32)
        step = _chunk_fn(compile)
        for start in range(0, n, chunk):
            h = hidden[start : start + chunk].to(mm_dtype)
            rows = (h.shape[0], w.shape[0])
            logits = torch.matmul(h, w.T, out=space.get("logits", rows, mm_dtype, device))
            g = space.get("grad", rows, mm_dtype, device)
            total += step(logits, targets[start : start + chunk], g)
            if need_h:
                grad_h[start : start + chunk] = (g @ w).to(hidden.dtype) / n
            if need_w:
                grad_w.add_(
                    torch.matmul(g.T, h, out=space.get("grad_w", tuple(w.shape), mm_dtype, device)), alpha=1.0 / n
                )
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None, None, None, None


def _loss_only(hidden, weight, targets, chunk: int, bf16: bool) -> torch.Tensor:
    mm_dtype = torch.bfloat16 if bf16 else hidden.dtype
    w = weight.to(mm_dtype)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk):
        logits = (hidden[start : start + chunk].to(mm_dtype) @ w.T).float()
        total += torch.nn.functional.cross_entropy(logits, targets[start : start + chunk], reduction="sum")
    return total / hidden.shape[0]


def fused_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk: int = 1024,
    bf16: bool = False,
    compile: bool = False,
    workspace: Workspace | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of softmax(hidden @ weight.T) against targets; hidden [N, d], targets [N]. Pass one
    `workspace` to every call of a training loop so the chunk buffers are allocated once."""
    hidden, targets = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    if not torch.is_grad_enabled() or not (hidden.requires_grad or weight.requires_grad):
        return _loss_only(hidden, weight, targets, chunk, bf16)
    return _FusedLinearCE.apply(hidden, weight, targets, chunk, bf16, compile, workspace or Workspace())


@functools.cache
def _liger():
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    return liger_fused_linear_cross_entropy


def lm_head_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk: int = 1024,
    bf16: bool = False,
    compile: bool = False,
    workspace: Workspace | None = None,
) -> torch.Tensor:
    """The training loss of the LM head: liger-kernel's fused kernel on CUDA when installed, else growlm's own."""
    liger = _liger() if hidden.is_cuda else None
    if liger is None:
        return fused_linear_cross_entropy(hidden, weight, targets, chunk, bf16, compile, workspace)
    dtype = torch.bfloat16 if bf16 else hidden.dtype
    flat = hidden.reshape(-1, hidden.shape[-1]).to(dtype)
    return liger(flat, weight.to(dtype), targets.reshape(-1), accum_dtype=torch.float32).float()
