"""Fused LM-head + cross-entropy, computed chunk by chunk.

With V = 65,536 the head dominates small models: the full [tokens, V] float32 logits of one batch are often a
gigabyte. Here each chunk's logits are built, turned into the loss and into d(loss)/d(logits) at once, and the
gradients of the hidden states and of the head weight are accumulated during the forward pass; backward only
scales them. Memory holds one chunk of logits, and no matmul is recomputed.
Under bf16 the two matmuls of each chunk run in bfloat16 (softmax and accumulation stay float32).
"""

from __future__ import annotations

import torch


class _FusedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, bf16: bool):
        n = hidden.shape[0]
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        mm_dtype = torch.bfloat16 if bf16 else hidden.dtype
        w = weight.to(mm_dtype)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, n, chunk):
            h = hidden[start : start + chunk]
            t = targets[start : start + chunk]
            logits = (h.to(mm_dtype) @ w.T).float()
            target_logit = logits.gather(1, t[:, None])
            # softmax and log-sum-exp from one exp pass, in place (fewer passes over [chunk, V] than logsumexp)
            peak = logits.amax(dim=-1, keepdim=True)
            probs = logits.sub_(peak).exp_()
            norm = probs.sum(dim=-1, keepdim=True)
            total += (peak + norm.log() - target_logit).sum()
            if need_h or need_w:
                g = probs.mul_(norm.reciprocal())
                g[torch.arange(len(t), device=t.device), t] -= 1.0
                g = g.to(mm_dtype)
                if need_h:
                    grad_h[start : start + chunk] = (g @ w).to(hidden.dtype) / n
                if need_w:
                    grad_w.add_(g.T @ h.to(mm_dtype), alpha=1.0 / n)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None, None


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               chunk: int = 1024, bf16: bool = False) -> torch.Tensor:
    """Mean cross-entropy of softmax(hidden @ weight.T) against targets; hidden [N, d], targets [N]."""
    return _FusedLinearCE.apply(hidden.reshape(-1, hidden.shape[-1]), weight, targets.reshape(-1), chunk, bf16)
