"""A stage's plan applied to a model: freezing, LoRA adapters, the optimizer and the training forward.

`prepare` is the one place that turns "stage k of this plan" into a model ready to train (the trainer, checkpoint
restore and the cost estimate on meta-device models all use it); `Stage` bundles what the loop needs for one stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from growlm.config import TrainConfig
from growlm.model.llama import base_model, count_params
from growlm.train.flops import flops_per_token
from growlm.train.freeze import frozen_tensor_hashes, set_trainable
from growlm.train.lora import add_lora, lora_params_per_rank, solve_lora_rank
from growlm.train.parallel import Parallel
from growlm.train.plan import Plan
from growlm.train.slices import FrozenSlices, Region, old_block_regions
from growlm.train.step import LossModel


@dataclass
class StageModel:
    model: torch.nn.Module  # the LlamaForCausalLM, LoRA-wrapped (peft) when rank > 0
    no_grad_blocks: int  # bottom blocks run without autograd: frozen and nothing below them trains
    rank: int  # LoRA rank, 0 without adapters
    frozen_regions: dict[str, Region] = field(default_factory=dict)  # frozen slices of trained tensors, by name

    def trainable(self) -> int:
        """Parameters that train: those with requires_grad, less their frozen slices."""
        named = dict(base_model(self.model).named_parameters())
        frozen = sum(named[name][region].numel() for name, region in self.frozen_regions.items())
        return count_params(self.model, True) - frozen

    def frozen_hashes(self, model: torch.nn.Module | None = None) -> dict[str, str]:
        """sha256 of what must not change in the stage: frozen tensors and frozen slices (of `model`, default
        this one: the same stage's model gathered from its shards)."""
        return frozen_tensor_hashes(self.model if model is None else model, self.frozen_regions)


def prepare(plan: Plan, model: torch.nn.Module, k: int) -> StageModel:
    """Freeze stage k's frozen blocks (and the embedding unless it trains), add LoRA if the stage asks for it."""
    n_frozen, train_emb = plan.n_frozen(k), plan.train_embedding(k)
    set_trainable(model, n_frozen, train_emb)
    rank = 0
    if plan.adds_lora(k):
        per_rank = lora_params_per_rank(model, plan.old_blocks(k))
        growth = plan.cfg.growth
        rank = solve_lora_rank(plan.budget, count_params(model, True), per_rank, growth.lora_max_rank, k)
        model = add_lora(model, n_frozen, rank, growth.lora_alpha_ratio)
    return StageModel(model, 0 if (rank or train_emb) else n_frozen, rank, old_block_regions(plan, k))


def optimizer(
    model: torch.nn.Module, plan: Plan, k: int, t: TrainConfig, own_decay: set[int] = frozenset()
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; the old blocks in groups of their own when they train at a
    fraction of the stage's learning rate (each group's "lr_scale"); the tensors in `own_decay` (ids: those with
    frozen slices, growlm.train.slices) without it, as they are decayed entry by entry."""
    params = [p for p in model.parameters() if p.requires_grad]
    scale, old = plan.old_blocks_lr_scale(k), set()
    if 0 < scale < 1:
        layers = base_model(model).model.layers
        old = {id(p) for i in plan.old_blocks(k) for p in layers[i].parameters()}
    groups = []
    for lr_scale, members in (
        (1.0, [p for p in params if id(p) not in old]),
        (scale, [p for p in params if id(p) in old]),
    ):
        decayed = [p for p in members if p.ndim >= 2 and id(p) not in own_decay]
        groups += [
            {"params": decayed, "weight_decay": t.weight_decay, "lr_scale": lr_scale},
            {"params": [p for p in members if p.ndim < 2], "weight_decay": 0.0, "lr_scale": lr_scale},
            {
                "params": [p for p in members if p.ndim >= 2 and id(p) in own_decay],
                "weight_decay": 0.0,
                "lr_scale": lr_scale,
            },
        ]
    groups = [g for g in groups if g["params"]]  # an empty group changes nothing, and name-keyed state has none
    return torch.optim.AdamW(groups, lr=plan.stage_lr(k), betas=(t.beta1, t.beta2), foreach=True)


def rebuild(plan: Plan, k: int, complete: bool, tensors: dict[str, torch.Tensor] | None, embedding=None) -> StageModel:
    """The plain (unsharded) model that `tensors` (a stage's model state, growlm.train.parallel.model_state) hold:
    after a finished stage the plain model, inside one the model set up for it (frozen blocks, LoRA adapters);
    with `tensors` None, that model as initialised, for the caller to load. The global RNG is left as it was, so
    a rebuild changes nothing that follows."""
    from growlm.errors import GrowlmError
    from growlm.model.llama import build_model

    with torch.random.fork_rng(devices=[]):
        shape = plan.models[k]
        fits = embedding is not None and embedding.shape[1] == shape.d_model  # a widened model's comes from `tensors`
        model = build_model(shape, plan.depths[k], embedding if fits else None)
        prepared = StageModel(model, 0, 0) if complete else prepare(plan, model, k)
    if tensors is None:
        return prepared
    missing, unexpected = prepared.model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise GrowlmError(
            f"the saved tensors do not fit stage {k + 1}'s model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); was the config changed? resume with the run's own config"
        )
    return prepared


class Stage:
    """What one stage trains with: the (LoRA-wrapped) model, its loss module, optimizer and FLOPs per token.

    `forward` is what a training step calls: the loss module itself, its DDP wrapper, or (fsdp) the loss module
    sharded in place; `loss_model` is the same module for validation and for the model's state."""

    def __init__(
        self, plan: Plan, prepared: StageModel, k: int, bf16: bool, parallel: Parallel, recompute: bool = False
    ):
        t = plan.cfg.train
        self.k, self.depth, self.steps, self.rank = k, plan.depths[k], plan.steps_in(k), prepared.rank
        self.model = prepared.model
        llama = base_model(self.model)
        self.fpt = flops_per_token(llama, plan.cfg.model.context)
        self.trainable, self.total = prepared.trainable(), count_params(llama)
        self.loss_model = LossModel(
            self.model, prepared.no_grad_blocks, t.ce_chunk, bf16, t.compile, t.compile_blocks, recompute
        )
        self.forward = parallel.wrap(self.loss_model)
        live = dict(base_model(self.model).named_parameters())  # after wrapping: FSDP2 replaced them with shards
        self.frozen_slices = FrozenSlices(live, prepared.frozen_regions, t.weight_decay)
        self.opt = optimizer(self.model, plan, k, t, self.frozen_slices.params)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
