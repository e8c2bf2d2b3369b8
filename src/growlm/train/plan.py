"""The plan of a run, computed from its config alone: depth after each stage, which blocks are old and which of
them train, the trainable-parameter budget, learning rates and steps. Pure: it never touches a model
(growlm.train.stage applies a stage's plan to one).
"""

from __future__ import annotations

import math

import torch

from growlm.config import RunConfig, StageConfig
from growlm.model.llama import count_params, llama_config
from growlm.train.freeze import set_trainable


def stage_depths(stages: list[StageConfig]) -> list[int]:
    depths, total = [], 0
    for stage in stages:
        total += stage.add_blocks
        depths.append(total)
    return depths


def lr_at(step: int, steps: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine down to min_ratio x peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Plan:
    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.stages = cfg.growth.stages
        self.depths = stage_depths(self.stages)
        self.models = cfg.stage_models()  # the model's shape in each stage (widening stages change it)
        self.tokens_per_step = cfg.train.batch_size * cfg.model.context
        self.budget = int(cfg.growth.budget_factor * self._stage1_trainable())

    def train_embedding(self, k: int) -> bool:
        chosen = self.stages[k].train_embedding
        return chosen if chosen is not None else self.cfg.substrate.kind == "trainable"

    def old_blocks(self, k: int) -> range:
        """The blocks stage k did not add: those of the earlier stages."""
        return range(self.depths[k - 1] if k else 0)

    def widens(self, k: int) -> bool:
        """Whether stage k starts by widening the model (growlm.model.widen)."""
        return self.stages[k].widens

    def freezes_old_slices(self, k: int) -> bool:
        """A widening stage whose earlier blocks keep their old rows and columns frozen: only the new ones train."""
        return self.widens(k) and not self.stages[k].trains_old_blocks and bool(self.old_blocks(k))

    def n_frozen(self, k: int) -> int:
        """Old blocks that stay frozen in stage k (all of them, unless the stage trains them; none in a widening
        stage, whose old blocks train at least their new rows and columns)."""
        if self.stages[k].trains_old_blocks or self.widens(k):
            return 0
        return len(self.old_blocks(k))

    def adds_lora(self, k: int) -> bool:
        """Whether stage k puts LoRA adapters on its frozen blocks (the rank is solved against the budget)."""
        return bool(self.stages[k].lora and self.n_frozen(k))

    def old_blocks_lr_scale(self, k: int) -> float:
        """The earlier stages' blocks' learning rate over the stage's (1 with train_old_blocks)."""
        stage = self.stages[k]
        return 1.0 if stage.train_old_blocks or k == 0 else stage.old_blocks_lr_scale

    def steps_in(self, k: int) -> int:
        return max(1, math.ceil(self.stages[k].tokens / self.tokens_per_step))

    def stage_lr(self, k: int) -> float:
        return self.stages[k].lr or self.cfg.train.lr

    def warmup_steps(self, k: int) -> int:
        """train.warmup_tokens in whole steps (the same for every stage), else warmup_frac of the stage."""
        t, steps = self.cfg.train, self.steps_in(k)
        if t.warmup_tokens is not None:
            return min(steps, max(1, round(t.warmup_tokens / self.tokens_per_step)))
        return max(1, int(t.warmup_frac * steps))

    def lr(self, k: int, step: int) -> float:
        return lr_at(step, self.steps_in(k), self.stage_lr(k), self.warmup_steps(k), self.cfg.train.min_lr_ratio)

    def _stage1_trainable(self) -> int:
        from transformers import LlamaForCausalLM

        with torch.device("meta"):
            model = LlamaForCausalLM(llama_config(self.models[0], self.depths[0]))
        set_trainable(model, 0, self.train_embedding(0))
        return count_params(model, trainable_only=True)
