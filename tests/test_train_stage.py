"""growlm.train.stage: a stage's plan applied to a model (freezing, LoRA under the budget, optimizer groups)."""

import torch

from growlm.config import validate_config
from growlm.model.llama import build_model, count_params
from growlm.train.plan import Plan
from growlm.train.stage import optimizer, prepare


def plan_of(*stages: dict) -> Plan:
    model = {"d_model": 32, "n_heads": 2, "context": 16}
    return Plan(validate_config({"model": model, "growth": {"stages": list(stages), "budget_factor": 1.2}}))


def frozen_names(model) -> set[str]:
    return {n for n, p in model.named_parameters() if not p.requires_grad}


def test_old_blocks_freeze_and_run_without_autograd():
    plan = plan_of({"add_blocks": 2}, {"add_blocks": 1})
    prepared = prepare(plan, build_model(plan.cfg.model, 3, None), 1)
    frozen = frozen_names(prepared.model)
    assert {n.split(".")[2] for n in frozen if n.startswith("model.layers.")} == {"0", "1"}
    assert "model.embed_tokens.weight" in frozen and "lm_head.weight" not in frozen
    assert prepared.rank == 0 and prepared.no_grad_blocks == 2


def test_lora_fills_the_budget_and_trains_only_adapters_on_old_blocks():
    plan = plan_of({"add_blocks": 2}, {"add_blocks": 1, "lora": True})
    prepared = prepare(plan, build_model(plan.cfg.model, 3, None), 1)
    assert prepared.rank >= 1 and prepared.no_grad_blocks == 0  # gradients flow into the adapters
    assert count_params(prepared.model, True) <= plan.budget
    trained_old = {n for n, p in prepared.model.named_parameters() if p.requires_grad and ".layers.0." in n}
    assert trained_old and all("lora_" in n for n in trained_old)


def test_old_blocks_get_their_own_learning_rate_groups():
    plan = plan_of({"add_blocks": 1}, {"add_blocks": 1, "old_blocks_lr_scale": 0.25})
    model = build_model(plan.cfg.model, 2, None)
    prepared = prepare(plan, model, 1)
    opt = optimizer(prepared.model, plan, 1, plan.cfg.train)
    scaled = {id(p) for g in opt.param_groups if g["lr_scale"] == 0.25 for p in g["params"]}
    assert scaled == {id(p) for p in model.model.layers[0].parameters()}
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert all(p.ndim >= 2 for p in model.parameters() if id(p) in decay)
    assert isinstance(opt, torch.optim.AdamW)
