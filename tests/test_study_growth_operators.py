import json

import pytest
import torch

from growlm.cli import main
from growlm.study.growth_operators import ARMS, REFERENCE, SCALES
from growlm.train.metrics import read_metrics
from growlm.train.records import StageStart, TrainRow
from growlm.train.rundir import RunDir

PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("growth") / "study"
    assert main(["study", "growth-operators", "--scale", "smoke", "--out", str(out)]) == 0
    return out, json.loads((out / "study.json").read_text())


def table(study_json: dict, title: str) -> dict[str, dict]:
    [t] = [t for t in study_json["tables"] if t["title"] == title]
    return {row[0]: dict(zip(t["columns"], row)) for row in t["rows"]}


def final_runs(out, arm: str) -> list[RunDir]:
    [lr_dir] = {p.parent for p in (out / "runs" / arm).glob("lr-*/seed-1")}
    return [RunDir(lr_dir / f"seed-{s}") for s in range(SCALES["smoke"].seeds)]


@pytest.mark.slow
def test_every_arm_ends_at_depth_nine_with_the_monolithic_flops(study):
    out, data = study
    rows = table(data, "Growth operators at equal training FLOPs")
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
        arm: RunDir(out / "runs" / arm / "lr-0.001" / "seed-0").read_summaries()[0].val_loss
        for arm in ("paper", "identity", "copy_top", "stack")
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
    comparison = data["comparison"]
    assert comparison["reference"] == REFERENCE and len(comparison["budgets"]) == 1  # the end of the runs only
    assert max(comparison["shares"].values()) == 1.0  # the arm that spent least is read at its very end
    arms = table(data, "Growth operators at equal training FLOPs")
    assert all(row["read at (share of own schedule)"] == f"{comparison['shares'][a]:.1%}" for a, row in arms.items())
    from growlm.config import load_config
    from growlm.model.llama import build_model, count_params

    for arm, row in arms.items():  # tokens per non-embedding parameter of the final nine-block model
        run = final_runs(out, arm)[0]
        cfg = load_config(run.config_file)
        with torch.device("meta"):
            llama = build_model(cfg.model, 9, None)
        blocks = count_params(llama) - llama.model.embed_tokens.weight.numel() - llama.lm_head.weight.numel()
        tokens = run.read_summaries()[-1].tokens
        assert row["tokens per param (trainable / non-embedding)"].endswith(f" / {tokens / blocks:.3g}")
    for arm, diffs in comparison["differences"].items():
        for j, diff in enumerate(diffs):
            per_seed = [a - b for a, b in zip(comparison["losses"][arm][j], comparison["losses"][REFERENCE][j])]
            assert diff["mean"] == pytest.approx(sum(per_seed) / len(per_seed))
            assert diff["n"] == SCALES["smoke"].seeds and diff["p"] is not None
    sweep = table(data, "Learning-rate sweep (seed 0)")
    lrs = SCALES["smoke"].lrs
    for arm, row in sweep.items():
        losses = {lr: row[f"val loss at LR {lr:g}"] for lr in lrs}
        chosen = float(row["chosen"].split()[0])
        assert losses[chosen] == min(losses.values())
        assert all((out / "runs" / arm / f"lr-{lr:g}" / "seed-0").is_dir() for lr in lrs)
        assert final_runs(out, arm)[0].path.parent.name == f"lr-{chosen:g}"
    assert "too few to call a winner" in data["verdict"]
    assert (out / "plots" / "val-loss-vs-flops.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow
def test_same_warmup_tokens_in_every_stage(study):
    out, _ = study
    for arm in ("paper", "paper+all-blocks"):
        rows = [r for r in read_metrics(final_runs(out, arm)[0].metrics) if isinstance(r, TrainRow)]
        warm = SCALES["smoke"].values["train.warmup_tokens"] // (4 * 64)
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
    assert "--substrate applies to growth-operators" in capsys.readouterr().err and not out.exists()
