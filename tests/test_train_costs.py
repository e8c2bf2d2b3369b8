"""`growlm plan`: costs computed from the config alone agree with what training really builds and counts."""

from pathlib import Path

from growlm.cli import main
from growlm.config import load_config
from growlm.train.costs import GPUS, parallel_choice, stage_costs
from growlm.train.memory import GiB


def test_plan_counts_what_the_trainer_trains(tiny_config):
    cfg = load_config(tiny_config())
    from growlm.model.growth import grow
    from growlm.model.llama import build_model, count_params
    from growlm.train.flops import flops_per_token
    from growlm.train.plan import Plan
    from growlm.train.stage import prepare

    plan, costs = Plan(cfg), stage_costs(cfg, 1, GPUS["h100"], 0.4)
    model = build_model(cfg.model, 0, None)
    for k, cost in enumerate(costs):
        grow(model, plan.stages[k].add_blocks, "random")
        trained = prepare(plan, model, k).model
        assert cost.trainable == count_params(trained, True)
        assert cost.flops == flops_per_token(model, cfg.model.context).total * plan.steps_in(k) * plan.tokens_per_step
    assert [c.depth for c in costs] == plan.depths


def test_time_scales_with_gpus_and_mfu(tiny_config):
    cfg = load_config(tiny_config())
    one, four = stage_costs(cfg, 1, GPUS["h100"], 0.4), stage_costs(cfg, 4, GPUS["h100"], 0.2)
    assert all(abs(b.seconds - a.seconds / 2) < 1e-12 for a, b in zip(one, four))
    assert all(b.memory < a.memory for a, b in zip(one, four)), "activations split over GPUs"


def test_constructive_stage_costs_less_than_monolithic(tiny_config):
    grown = stage_costs(load_config(tiny_config()), 1, GPUS["a100"], 0.4)
    retrained = stage_costs(load_config(tiny_config(), ["growth.stages.1.train_old_blocks=true"]), 1, GPUS["a100"], 0.4)
    assert grown[1].depth == retrained[1].depth == 2
    assert grown[1].flops < retrained[1].flops and grown[1].trainable < retrained[1].trainable


def test_cli_prints_the_table_and_refuses_bad_numbers(tiny_config, capsys):
    assert main(["plan", str(tiny_config()), "--gpus", "2", "--gpu", "h200"]) == 0
    out = capsys.readouterr().out
    assert "H200" in out and "GiB per GPU" in out
    assert main(["plan", str(tiny_config()), "--gpus", "0"]) == 2
    assert "--gpus must be" in capsys.readouterr().err


def test_the_paper_growth_series_fits_eight_h100s_only_sharded(capsys):
    cfg = load_config(Path(__file__).parents[1] / "configs" / "growth-series-paper.toml")
    h100, h200 = (stage_costs(cfg, 8, GPUS[g], 0.4) for g in ("h100", "h200"))
    assert max(c.memory for c in h100) / GiB > 80 >= max(c.sharded_memory for c in h100) / GiB
    assert parallel_choice(cfg, h100, 8, GPUS["h100"])[0] == "fsdp"
    assert parallel_choice(cfg, h200, 8, GPUS["h200"])[0] == "ddp"
    assert main(["plan", str(Path(__file__).parents[1] / "configs" / "growth-series-paper.toml"), "--gpus", "8"]) == 0
    assert "parallel: fsdp (a replica needs" in capsys.readouterr().out


def test_the_8b_config_fits_a_node_only_with_activation_checkpointing():
    cfg = load_config(Path(__file__).parents[1] / "configs" / "growth-8b.toml")
    assert [m.d_model for m in cfg.stage_models()] == [4096] * 8 and sum(s.add_blocks for s in cfg.growth.stages) == 32
    for gpus in (8, 16):
        costs = stage_costs(cfg, gpus, GPUS["h100"], 0.4)
        assert max(c.sharded_memory for c in costs) / GiB > 80 >= max(c.recomputed_sharded_memory for c in costs) / GiB
        mode, why = parallel_choice(cfg, costs, gpus, GPUS["h100"])
        assert mode == "fsdp" and "with activation checkpointing (auto)" in why and why.endswith("fits")
    without = load_config(
        Path(__file__).parents[1] / "configs" / "growth-8b.toml", ["train.activation_checkpointing='none'"]
    )
    assert "does NOT fit" in parallel_choice(without, costs, 16, GPUS["h100"])[1]
