"""Activation checkpointing (train.activation_checkpointing): the trained blocks run their forward again in the
backward pass and give the same loss and gradients; the frozen prefix is not recomputed; the memory estimate
keeps only each block's input; "auto" turns it on only when the run does not fit otherwise."""

import copy

import pytest
import torch

from conftest import tiny_llama
from growlm.config import load_config
from growlm.model.llama import base_model
from growlm.train import memory
from growlm.train.dist import Dist
from growlm.train.freeze import set_trainable
from growlm.train.lora import add_lora
from growlm.train.step import LossModel


def step(lm, no_grad_blocks: int, recompute: bool, batch: torch.Tensor):
    """One forward and backward; the loss, each trainable parameter's gradient, and the block forwards run."""
    calls = []
    hooks = [
        block.register_forward_pre_hook(lambda module, args, i=i: calls.append(i))
        for i, block in enumerate(base_model(lm).model.layers)
    ]
    loss_model = LossModel(lm, no_grad_blocks, ce_chunk=64, bf16=False, compile=False, recompute=recompute)
    loss = loss_model(batch)
    loss.backward()
    for hook in hooks:
        hook.remove()
    grads = {name: p.grad.clone() for name, p in lm.named_parameters() if p.requires_grad}
    return loss.item(), grads, calls


@pytest.mark.parametrize("lora", [False, True])
def test_recomputed_blocks_give_the_same_loss_and_gradients(lora):
    batch = torch.randint(0, 65536, (2, 17), generator=torch.Generator().manual_seed(1))
    base = tiny_llama(0, layers=3).train()
    results = []
    for recompute in (False, True):
        lm = copy.deepcopy(base)
        set_trainable(lm, 2, train_embedding=False)  # a growth stage: 2 frozen blocks, 1 new
        no_grad = 2
        if lora:  # a LoRA stage: adapters on the frozen blocks, so every block runs with autograd
            torch.manual_seed(3)  # the same adapters in both runs
            lm, no_grad = add_lora(lm, 2, rank=4, alpha_ratio=2.0), 0
            for name, p in lm.named_parameters():
                if "lora_B" in name:
                    torch.nn.init.normal_(p, std=0.1)  # non-zero B, so the adapters' A matrices get gradients
        results.append(step(lm, no_grad, recompute, batch))
    (loss_a, grads_a, calls_a), (loss_b, grads_b, calls_b) = results
    assert abs(loss_a - loss_b) <= 1e-6 * abs(loss_a)
    assert grads_a.keys() == grads_b.keys() and any("lora_A" in k for k in grads_a) == lora
    for name in grads_a:
        scale = grads_a[name].abs().max().clamp(min=1e-12)
        assert ((grads_a[name] - grads_b[name]).abs().max() / scale).item() <= 1e-6, name
        assert grads_a[name].abs().max() > 0, f"{name} got no gradient"
    # without: each block runs once; with: the trained blocks run again in the backward pass, the prefix does not
    assert sorted(calls_a) == [0, 1, 2]
    assert sorted(calls_b) == ([0, 0, 1, 1, 2, 2] if lora else [0, 1, 2, 2])


def test_the_estimate_keeps_one_input_per_block():
    cfg = load_config(None, ["model.d_model=1024", "model.n_heads=8", "growth.stages.0.add_blocks=8"])
    plain, kept = memory.estimate(cfg), memory.estimate(cfg, recompute=True)
    assert kept.weights == plain.weights and kept.optimizer == plain.optimizer
    assert kept.activations < plain.activations / 2


def test_auto_turns_it_on_only_when_the_run_does_not_fit_otherwise(monkeypatch):
    deep = ["model.d_model=1024", "model.n_heads=8", "growth.stages.0.add_blocks=8"]
    cfg = load_config(None, [*deep, "train.activation_checkpointing='auto'"])
    assert memory.estimate(cfg, recompute=True).total < memory.estimate(cfg).total
    plain, kept = memory.estimate(cfg).total, memory.estimate(cfg, recompute=True).total
    monkeypatch.setattr(memory, "available_bytes", lambda device: (plain * 2, "available RAM"))
    assert not memory.recompute_blocks(cfg, Dist())
    monkeypatch.setattr(memory, "available_bytes", lambda device: ((plain + kept) // 2, "available RAM"))
    assert memory.recompute_blocks(cfg, Dist())
    memory.check_fits(cfg, Dist(), recompute=True)  # fits with it
    for choice, on in (("none", False), ("blocks", True)):
        fixed = load_config(
            None, ["model.d_model=1024", "model.n_heads=8", f"train.activation_checkpointing='{choice}'"]
        )
        assert memory.recompute_blocks(fixed, Dist()) is on
