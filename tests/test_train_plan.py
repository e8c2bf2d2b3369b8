"""growlm.train.plan: the plan follows from the config alone, and touches no model."""

import math

import pytest

from growlm.config import validate_config
from growlm.train.plan import Plan, lr_at


def config(stages: list[dict], **train):
    return validate_config(
        {
            "model": {"d_model": 32, "n_heads": 2, "context": 16},
            "growth": {"stages": stages},
            "train": {"batch_size": 4, **train},
        }
    )


def test_depths_old_blocks_and_what_stays_frozen():
    plan = Plan(
        config(
            [
                {"add_blocks": 2},
                {"add_blocks": 1},
                {"add_blocks": 1, "lora": True},
                {"add_blocks": 0, "train_old_blocks": True},
                {"add_blocks": 1, "old_blocks_lr_scale": 0.1},
            ]
        )
    )
    assert plan.depths == [2, 3, 4, 4, 5]
    assert [plan.old_blocks(k) for k in range(5)] == [range(0), range(2), range(3), range(4), range(4)]
    assert [plan.n_frozen(k) for k in range(5)] == [0, 2, 3, 0, 0]
    assert [plan.adds_lora(k) for k in range(5)] == [False, False, True, False, False]
    assert [plan.old_blocks_lr_scale(k) for k in range(5)] == [1.0, 0.0, 0.0, 1.0, 0.1]


def test_steps_budget_and_embedding_follow_the_config():
    cfg = config([{"add_blocks": 1, "tokens": 64 * 10 + 1}, {"add_blocks": 1, "tokens": 1}])
    plan = Plan(cfg)
    assert plan.tokens_per_step == 64 and [plan.steps_in(k) for k in range(2)] == [11, 1]
    assert plan.train_embedding(0) is False  # the substrate is frozen unless the config says trainable
    trainable = Plan(cfg.model_copy(update={"substrate": cfg.substrate.model_copy(update={"kind": "trainable"})}))
    assert trainable.train_embedding(0) and trainable.budget > plan.budget  # the embedding counts when it trains


def test_schedule_warms_up_linearly_then_decays_to_the_floor():
    assert [lr_at(s, 10, 1.0, 4, 0.1) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_at(4, 10, 1.0, 4, 0.1) == pytest.approx(1.0)
    assert lr_at(10, 10, 1.0, 4, 0.1) == pytest.approx(0.1)
    assert lr_at(7, 10, 1.0, 4, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_warmup_tokens_give_every_stage_the_same_warmup():
    cfg = config([{"tokens": 64 * 40}, {"tokens": 64 * 7}], warmup_tokens=4 * 64)
    plan = Plan(cfg)
    assert [plan.warmup_steps(k) for k in range(2)] == [4, 4]
    assert [plan.lr(1, s) / plan.stage_lr(1) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    by_fraction = Plan(config([{"tokens": 64 * 40}, {"tokens": 64 * 7}], warmup_frac=0.1))
    assert [by_fraction.warmup_steps(k) for k in range(2)] == [4, 1]
