import json
import statistics

import pytest
import torch

from growlm.cli import main
from growlm.study.growth_operators import ARMS, REFERENCE, SCALES
from growlm.study.sweep import HELD_OUT_SEED, past_edge
from growlm.train.metrics import read_metrics
from growlm.train.records import StageStart, TrainRow
from growlm.train.rundir import RunDir

PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def study(module_tmp):
    out = module_tmp("growth") / "study"
    assert main(["study", "growth-operators", "--scale", "smoke", "--out", str(out)]) == 0
    return out, json.loads((out / "study.json").read_text())


ARMS_TABLE = "Growth operators at equal training FLOPs, budget 1x"


def table(study_json: dict, title: str) -> dict[str, dict]:
    [t] = [t for t in study_json["tables"] if t["title"] == title]
    return {row[0]: dict(zip(t["columns"], row)) for row in t["rows"]}


def final_runs(out, arm: str, budget: str = "1") -> list[RunDir]:
    [lr_dir] = {p.parent for p in (out / "runs" / f"budget-{budget}" / arm).glob("lr-*/seed-1")}
    return [RunDir(lr_dir / f"seed-{s}") for s in range(SCALES["smoke"].seeds)]


@pytest.mark.slow
def test_every_arm_ends_at_depth_nine_with_the_monolithic_flops(study):
    out, data = study
    rows = table(data, ARMS_TABLE)
    assert list(rows) == [arm.name for arm in ARMS]
    for arm in ARMS:
        [run] = final_runs(out, arm.name)[:1]
        last = run.read_summaries()[-1]
        assert last.depth == 9
        ratio = float(rows[arm.name]["training FLOPs (x monolithic)"].split("(")[1].rstrip("x)"))
        # smoke stages are a few steps long: whole steps match the budget to within 5% (1% at cpu scale)
        assert abs(ratio - 1) < 0.05, arm.name
    assert len(rows["paper+all-blocks"]["trainable params by stage"].split(" / ")) == 4


@pytest.mark.slow
def test_identity_growth_leaves_the_loss_exactly_unchanged_and_arms_share_stage_one(study):
    out, _ = study
    for run in final_runs(out, "identity"):
        summary = run.read_summaries()
        assert [s.val_loss_at_start for s in summary[1:]] == [s.val_loss for s in summary[:-1]]
    # operators act only at growth: with the same seed and rate, stage 1 is the same run
    first = {
        arm: RunDir(out / "runs" / "budget-1" / arm / "lr-0.001" / f"seed-{HELD_OUT_SEED}").read_summaries()[0].val_loss
        for arm in ("paper", "identity", "copy_top", "stack", "gstack")
    }
    assert len(set(first.values())) == 1


@pytest.mark.slow
def test_logged_flops_per_token_are_the_planned_ones(study):
    from growlm.config import load_config
    from growlm.train.costs import stage_shapes

    out, _ = study
    for arm in ("lora", "progressive", "paper+all-blocks"):
        run = final_runs(out, arm)[0]
        logged = [r.flops_per_token for r in read_metrics(run.metrics) if isinstance(r, StageStart)]
        planned = [f for f, _ in stage_shapes(load_config(run.config_file))]
        assert logged == planned, arm


@pytest.mark.slow
def test_comparison_is_paired_over_seeds_and_the_sweep_is_recorded(study):
    out, data = study
    assert data["budgets"] == [1.0]
    comparison = data["comparisons"]["1"]
    assert comparison["reference"] == REFERENCE
    from growlm.config import load_config
    from growlm.model.llama import build_model, count_params

    arms = table(data, ARMS_TABLE)
    for arm, row in arms.items():  # tokens per non-embedding parameter of the final nine-block model
        run = final_runs(out, arm)[0]
        cfg = load_config(run.config_file)
        with torch.device("meta"):
            llama = build_model(cfg.model, 9, None)
        blocks = count_params(llama) - llama.model.embed_tokens.weight.numel() - llama.lm_head.weight.numel()
        tokens = run.read_summaries()[-1].tokens
        assert row["tokens per param (trainable / non-embedding)"].endswith(f" / {tokens / blocks:.3g}")
    for arm, diff in comparison["differences"].items():
        per_seed = [a - b for a, b in zip(comparison["losses"][arm], comparison["losses"][REFERENCE])]
        assert diff["mean"] == pytest.approx(sum(per_seed) / len(per_seed))
        assert diff["n"] == SCALES["smoke"].seeds and diff["p"] is not None
    sweep = table(data, f"Learning-rate sweep (seed {HELD_OUT_SEED}), budget 1x")
    lrs = SCALES["smoke"].lrs
    for arm, row in sweep.items():
        losses = {float(k.rsplit(" ", 1)[1]): v for k, v in row.items() if k.startswith("val loss at LR") and v}
        chosen = float(row["chosen"].split()[0])
        assert losses[chosen] == min(losses.values())
        # the grid, and one rate past its edge where the grid's best was the edge (smoke: one step; two rates: always)
        on_grid = min(lrs, key=lambda lr: losses[lr])
        assert sorted(losses) == sorted([*lrs, past_edge(list(lrs), on_grid)])
        # the rates are chosen on a seed that no evaluated run uses
        assert all((out / "runs" / "budget-1" / arm / f"lr-{lr:g}" / f"seed-{HELD_OUT_SEED}").is_dir() for lr in losses)
        assert HELD_OUT_SEED >= SCALES["smoke"].seeds
        assert final_runs(out, arm)[0].path.parent.name == f"lr-{chosen:g}"
    assert "too few to call a winner" in data["verdicts"]["1"]
    assert (out / "plots" / "val-loss-vs-flops.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow
def test_same_warmup_tokens_in_every_stage(study):
    out, _ = study
    for arm in ("paper", "paper+all-blocks"):
        rows = [r for r in read_metrics(final_runs(out, arm)[0].metrics) if isinstance(r, TrainRow)]
        warm = SCALES["smoke"].patch["train"]["warmup_tokens"] // (4 * 64)
        peak = max(r.lr for r in rows)
        by_stage = {}
        for r in rows:
            by_stage.setdefault(r.stage, []).append(r)
        for stage_rows in by_stage.values():
            assert stage_rows[warm - 1].lr == pytest.approx(peak)  # warm-up ends after the same steps
            assert stage_rows[0].lr == pytest.approx(peak / warm)


def test_study_refuses_a_fixed_learning_rate_and_a_substrate_it_does_not_take(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["study", "growth-operators", "--scale", "smoke", "--out", str(out), "--set", "train.lr=1e-3"]) == 2
    assert "chooses each arm's learning rate" in capsys.readouterr().err and not out.exists()
    assert main(["study", "depth", "--scale", "smoke", "--out", str(out), "--substrate", "binary"]) == 2
    assert "unrecognized arguments: --substrate binary" in capsys.readouterr().err and not out.exists()


@pytest.fixture(scope="module")
def ladder(module_tmp):
    out = module_tmp("ladder") / "study"
    args = ["study", "growth-operators", "--scale", "smoke", "--budgets", "1,2", "--arms", "monolithic,gstack"]
    assert main([*args, "--out", str(out)]) == 0
    return out, json.loads((out / "study.json").read_text())


@pytest.mark.slow
def test_a_ladder_compares_only_final_losses_of_schedules_that_ended_there(ladder):
    from growlm.config import load_config
    from growlm.train.plan import Plan
    from growlm.train.records import ValRow

    out, data = ladder
    assert data["budgets"] == [1.0, 2.0]
    totals = {}
    for budget, comparison in data["comparisons"].items():
        assert set(comparison["losses"]) == {"monolithic", "gstack"}
        for arm, losses in comparison["losses"].items():
            runs = final_runs(out, arm, budget)
            assert len(losses) == len(runs) == SCALES["smoke"].ladder_seeds
            for run, loss, flops in zip(runs, losses, comparison["flops"][arm]):
                rows = read_metrics(run.metrics)
                last_val = [r for r in rows if isinstance(r, ValRow)][-1]
                assert (loss, flops) == (last_val.val_loss, last_val.flops)  # the final row, not a reading
                cfg = load_config(run.config_file)
                plan = Plan(cfg)
                k = len(cfg.growth.stages) - 1
                assert last_val.tokens == sum(s.tokens for s in cfg.growth.stages)
                last_train = [r for r in rows if isinstance(r, TrainRow)][-1]
                # the schedule ended there: the last step of its last stage (stage_step counts steps done), at the
                # decayed rate the plan gives
                assert (last_train.stage, last_train.stage_step) == (k + 1, plan.steps_in(k))
                assert last_train.lr == pytest.approx(plan.lr(k, plan.steps_in(k) - 1))
                after_warmup = [
                    r.lr
                    for r in rows
                    if isinstance(r, TrainRow) and r.stage == k + 1 and r.stage_step > plan.warmup_steps(k)
                ]
                assert last_train.lr == min(after_warmup)
            totals.setdefault(budget, []).extend(comparison["flops"][arm])
        # equal training FLOPs at each budget (whole steps: within 5% at smoke scale)
        assert max(totals[budget]) / min(totals[budget]) < 1.05
    assert statistics.fmean(totals["2"]) / statistics.fmean(totals["1"]) == pytest.approx(2, rel=0.05)
    rows = table(data, "Growth against monolithic by budget (final losses only)")
    diff = data["comparisons"]["2"]["differences"]["gstack"]
    assert (
        rows["gstack"]["2x: Δ vs monolithic [95% CI]"]
        == f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]"
    )
    # every budget has its own sweep on the held-out seed: the whole grid at the base budget, above it the arm's
    # rate at the budget below and half of it, each with one rate past the winning edge; and its own warm-up
    for arm in ("monolithic", "gstack"):
        swept = {
            b: sorted(
                float(p.parent.name[3:])
                for p in (out / "runs" / f"budget-{b}" / arm).glob(f"lr-*/seed-{HELD_OUT_SEED}")
            )
            for b in ("1", "2")
        }
        # the grid's two rates plus one past the winning edge
        assert swept["1"][1:] == list(SCALES["smoke"].lrs) or swept["1"][:-1] == list(SCALES["smoke"].lrs)
        chosen = float(final_runs(out, arm, "1")[0].path.parent.name[3:])
        assert [chosen / 2, chosen] in (pytest.approx(swept["2"][1:]), pytest.approx(swept["2"][:-1]))
        assert len(swept["2"]) == 3
    warm = {b: load_config(final_runs(out, "gstack", b)[0].config_file).train.warmup_tokens for b in ("1", "2")}
    assert warm["2"] == 2 * warm["1"]
    for name in ("delta-vs-budget", "val-loss-vs-flops-budget-1", "val-loss-vs-flops-budget-2"):
        assert (out / "plots" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)


def test_ladder_options_are_checked_before_the_folder_is_touched(tmp_path, capsys):
    out = tmp_path / "g"
    base = ["study", "growth-operators", "--scale", "smoke", "--out", str(out)]
    assert main([*base, "--arms", "paper,lora"]) == 2
    assert "--arms must include monolithic" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--arms", "monolithic,nope"]) == 2
    assert "no such arm" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--budgets", "1,0"]) == 2
    assert "--budgets '1,0': give distinct positive" in capsys.readouterr().err and not out.exists()
    assert main(["study", "depth", "--scale", "smoke", "--out", str(out), "--budgets", "1,2"]) == 2
    assert "unrecognized arguments: --budgets 1,2" in capsys.readouterr().err and not out.exists()
