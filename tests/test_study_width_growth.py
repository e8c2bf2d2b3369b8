import json
import math
import statistics

import pytest
import torch
from matplotlib.figure import Figure
from safetensors.torch import load_file

from growlm.cli import main
from growlm.config import load_config
from growlm.model.llama import llama_config
from growlm.model.widen import old_slices
from growlm.study.growth_operators.arms import ARMS as OPERATOR_ARMS
from growlm.study.growth_operators.arms import arm_config
from growlm.study.matched import compare_final
from growlm.study.width_growth import REFERENCE, SCALES, Rung, ladder, ladder_labels
from growlm.study.width_growth.arms import ARMS, BEST, KNOWN, SIX, WIDTH_OPERATORS, best_variant, config_of
from growlm.study.width_growth.tables import Verdict, contrasts, recovery_steps
from growlm.train.costs import stage_shapes
from growlm.train.records import Progress, StageStart, ValRow
from growlm.train.rundir import RunDir

PNG_MAGIC = b"\x89PNG"
ARMS_TABLE = "Growth in width and depth at equal training FLOPs, budget 1x"
SEEDS = SCALES["smoke"].seeds
TARGET = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 192, "num_hidden_layers": 9}


@pytest.fixture(scope="module")
def study(module_tmp):
    out = module_tmp("width") / "study"
    assert main(["study", "width-growth", "--scale", "smoke", "--out", str(out)]) == 0
    return out, json.loads((out / "study.json").read_text())


def table(study_json: dict, title: str) -> dict[str, dict]:
    [t] = [t for t in study_json["tables"] if t["title"] == title]
    return {row[0]: dict(zip(t["columns"], row)) for row in t["rows"]}


def arm_runs(out, arm: str, picked: str = "") -> list[RunDir]:
    """The evaluation runs of an arm at budget 1 (its chosen rate's folder)."""
    folder = out / "runs" / "budget-1" / arm / picked
    [lr_dir] = {p.parent for p in folder.glob("lr-*/seed-1")}
    return [RunDir(lr_dir / f"seed-{s}") for s in range(SEEDS)]


def model_config(run: RunDir, stage: int) -> dict:
    return json.loads((run.stage_model(stage) / "config.json").read_text())


@pytest.mark.slow
def test_every_arm_spends_monolithic_flops_and_width_arms_end_at_the_target_shape(study):
    out, data = study
    picked = data["picked"]["1"]
    rows = table(data, ARMS_TABLE)
    names = [arm.name for arm in ARMS]
    assert list(rows) == [f"{n} ({picked})" if n in BEST else n for n in names]
    for label, row in rows.items():
        ratio = float(row["training FLOPs (x monolithic)"].split("(")[1].rstrip("x)"))
        # smoke stages are a few whole steps (9 monolithic ones): within 5% (1% at cpu scale, test below)
        assert abs(ratio - 1) < 0.05, label
    assert model_config(arm_runs(out, REFERENCE)[0], 1).items() >= TARGET.items()
    widened = [(a.name, "", a.factor) for a in ARMS if a.width_init] + [(b, picked, KNOWN[b].factor) for b in BEST]
    for name, folder, factor in widened:
        for run in arm_runs(out, name, folder):
            assert model_config(run, 2).items() >= TARGET.items(), name
            first = model_config(run, 1)
            assert (first["hidden_size"], first["num_attention_heads"]) == (64 // factor, 4 // factor), name
    assert model_config(arm_runs(out, "depth+width")[0], 1)["num_hidden_layers"] == 3


def _old_region_kept(operator: str, name: str, before: torch.Tensor, old: torch.Tensor, scale: float) -> bool:
    """Whether `old` (the final model's old region of a block parameter) is what the widening put there from
    stage 1's `before`: random the old weights bit for bit; zero too, but RMSNorm weights x sqrt(d/d') (the same
    float32 multiply widen does, so bit for bit); copy the norms bit for bit and every matrix's columns each times
    one split factor (the ratio to the old weights is the same in every row, up to the division's rounding)."""
    if operator == "random" or (before.dim() == 1 and operator == "copy"):
        return torch.equal(old, before)
    if operator == "zero":
        return torch.equal(old, before.mul(scale) if before.dim() == 1 else before)
    ratio = old / before
    return bool(torch.allclose(ratio, ratio[:1].expand_as(ratio), rtol=1e-5, atol=0))


@pytest.mark.slow
@pytest.mark.parametrize("operator", WIDTH_OPERATORS)
def test_frozen_arms_keep_the_old_slices_of_their_blocks_and_training_arms_move_them(study, operator):
    out, _ = study
    for frozen in (True, False):
        run = arm_runs(out, f"width-{operator}" + ("-frozen" if frozen else ""))[0]
        small, wide = load_config(run.config_file).stage_models()
        regions = old_slices(llama_config(small, 9), llama_config(wide, 9))
        before = load_file(run.stage_model(1) / "model.safetensors")
        after = load_file(run.stage_model(2) / "model.safetensors")
        scale = math.sqrt(small.d_model / wide.d_model)
        blocks = [name for name in regions if name.startswith("model.layers.")]
        assert len(blocks) == 9 * 9
        kept = [n for n in blocks if _old_region_kept(operator, n, before[n], after[n][regions[n]], scale)]
        if frozen:
            assert kept == blocks
        else:  # trained: the 2-D weights moved (a norm's gradient may be tiny, so only matrices are counted)
            assert not [n for n in kept if before[n].dim() == 2]
        head = "lm_head.weight"  # the head trains in every arm
        assert not torch.equal(after[head][regions[head]], before[head])


@pytest.mark.slow
def test_results_hold_holm_p_for_every_arm_and_the_best_pick(study):
    out, data = study
    assert data["budgets"] == [1.0]
    comparison = data["comparisons"]["1"]
    others = [arm.name for arm in ARMS if arm.name != REFERENCE]
    assert comparison["reference"] == REFERENCE and set(comparison["differences"]) == set(others)
    assert all(comparison["p_holm"][arm] is not None for arm in others)
    for arm, diff in comparison["differences"].items():
        assert diff["n"] == SEEDS and diff["p"] is not None and comparison["p_holm"][arm] >= diff["p"]
    picked = data["picked"]["1"]
    assert picked == min(SIX, key=lambda arm: statistics.fmean(comparison["losses"][arm]))
    assert data["labels"]["1"]["best-4x"] == f"best-4x ({picked})"
    for best in BEST:
        [run] = arm_runs(out, best, picked)[:1]
        cfg, source = load_config(run.config_file), load_config(arm_runs(out, picked)[0].config_file)
        assert cfg.growth.width_init == source.growth.width_init
        assert cfg.growth.stages[1].train_old_blocks == source.growth.stages[1].train_old_blocks
    at = {arm: load_config(arm_runs(out, arm, p)[0].config_file) for arm, p in (("best-late", picked), (picked, ""))}
    share = {arm: stage_shapes(c)[0][0] * c.growth.stages[0].tokens for arm, c in at.items()}
    assert share["best-late"] > 1.5 * share[picked]  # the growth comes later: 50% of the FLOPs against 25%
    assert len(data["contrasts"]["1"]) == 5
    verdict = data["verdicts"]["1"]
    assert f"Best width arm at this budget: {picked}" in verdict and "selection effect" in verdict
    assert "Holm-adjusted p < 0.05 over the 11 arms" in verdict
    assert (out / "plots" / "val-loss-vs-flops.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow
def test_function_preserving_widening_leaves_the_loss_and_random_does_not(study):
    out, data = study
    rows = table(data, ARMS_TABLE)
    for operator in WIDTH_OPERATORS:
        for name in (f"width-{operator}", f"width-{operator}-frozen"):
            for run in arm_runs(out, name):
                first, grown = run.read_summaries()
                jump = abs(grown.val_loss_at_start - first.val_loss)
                # zero and copy are exact up to float32 rounding (~1e-6 nats); random replaces the new weights
                assert jump < 1e-4 if operator != "random" else jump > 1e-3, name
            if operator != "random":
                assert rows[name]["steps back to the pre-growth loss"] == "0"


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["study", "width-growth", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in ("--budgets", "--arms", "--scale", "--seeds", "--set"))
    assert "smoke:" in help_text and "cpu:" in help_text and "paper:" in help_text


def test_options_are_checked_before_the_folder_is_touched(tmp_path, capsys):
    out = tmp_path / "w"
    base = ["study", "width-growth", "--scale", "smoke", "--out", str(out)]
    cases = [
        (["--arms", "width-zero,paper"], "--arms must include monolithic"),
        (["--arms", "monolithic,best-4x"], "vary the best width arm"),
        (["--arms", "monolithic,nope"], "no such arm"),
        (["--budgets", "1,0"], "--budgets '1,0': give distinct positive"),
        (["--set", "train.lr=1e-3"], "chooses each arm's learning rate"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err and not out.exists()


def test_cpu_arms_match_growth_operators_and_split_the_monolithic_flops():
    """At cpu scale (configs only, nothing trained): the depth arms are growth-operators' own configs, the width
    arms start at half (quarter) width and spend monolithic's FLOPs, 25% (50%) of them before growing."""
    go = {arm.name: arm for arm in OPERATOR_ARMS}
    for name in ("monolithic", "paper", "gstack"):
        assert config_of(KNOWN[name], "cpu", ()) == arm_config(go[name], "cpu", (), "visual")
    mono = config_of(KNOWN[REFERENCE], "cpu", ())
    total = stage_shapes(mono)[0][0] * mono.growth.stages[0].tokens
    copy = KNOWN["width-copy"]
    shapes = {"width-copy": (64, 2, 192), "best-4x": (32, 1, 128), "best-late": (64, 2, 192)}
    for arm in (copy, KNOWN["width-zero-frozen"], KNOWN["depth+width"], *(best_variant(b, copy) for b in BEST)):
        cfg = config_of(arm, "cpu", ())
        small, wide = cfg.stage_models()
        assert (small.d_model, small.n_heads, small.ff) == shapes.get(arm.name, (64, 2, 192))
        assert (wide.d_model, wide.n_heads, wide.ff) == (128, 4, 384)
        flops = [f * stage.tokens for (f, _), stage in zip(stage_shapes(cfg), cfg.growth.stages)]
        assert sum(flops) / total == pytest.approx(1, abs=0.01), arm.name  # whole steps of 88 monolithic ones
        assert flops[0] / total == pytest.approx(arm.at, abs=0.01), arm.name
        assert cfg.growth.stages[1].train_old_blocks == arm.train_old


def _val(stage: int, step: int, loss: float, start: bool = False) -> ValRow:
    return ValRow(stage, 9, Progress(step), loss, at_stage_start=start)


def test_recovery_counts_steps_to_the_pre_growth_loss_at_validation_resolution():
    rows = [
        StageStart(1, 9, 0, 1, 1),
        _val(1, 4, 5.0),
        StageStart(2, 9, 4, 1, 1),
        _val(2, 4, 5.3, start=True),
        _val(2, 8, 5.1),
        _val(2, 12, 4.99),
        StageStart(3, 9, 12, 1, 1),
        _val(3, 12, 4.99, start=True),
        _val(3, 16, 5.0),
    ]
    # stage 2 gets back below 5.0 eight steps after its growth; stage 3's growth changed nothing (within 1e-4)
    assert recovery_steps(rows, [5.0, 4.98995]) == [8, 0]
    assert recovery_steps(rows, [5.0, 4.9]) == [8, None]


def test_verdict_contrasts_and_ladder_from_given_losses():
    losses = {
        REFERENCE: [3.0, 3.1, 3.2],
        **{f"width-{op}": [3.5, 3.61, 3.7] for op in WIDTH_OPERATORS},
        **{f"width-{op}-frozen": [3.6, 3.7, 3.81] for op in WIDTH_OPERATORS},
        "paper": [2.9, 3.01, 3.1],
        "best-4x": [3.4, 3.5, 3.6],  # identical differences to monolithic: no p-value, not counted by Holm
    }
    comparison = compare_final({arm: [(1.0, x) for x in values] for arm, values in losses.items()}, REFERENCE)
    found = contrasts(comparison.losses, "width-zero")
    assert list(found) == [
        "(zero + copy) / 2 - random, old weights training",
        "(zero + copy) / 2 - random, old weights frozen",
        "frozen - training old weights, mean of zero, copy, random",
        "4x - 2x (width-zero)",
    ]
    assert found["frozen - training old weights, mean of zero, copy, random"].mean == pytest.approx(0.1)
    text = Verdict(comparison, found, "width-zero", 3).text()
    six = ", ".join(f"width-{op}{mode}" for mode in ("", "-frozen") for op in WIDTH_OPERATORS)
    assert f"over the 7 arms compared with monolithic, 3 seeds): paper; worse: {six};" in text
    assert "frozen - training old weights, mean of zero, copy, random +0.100 [+0.075, +0.125], p 0.003: higher" in text
    assert "(zero + copy) / 2 - random, old weights training +0.000 [+0.000, +0.000], p 1.000: no difference" in text
    assert "Best width arm at this budget: width-zero" in text
    one = compare_final({arm: [(1.0, values[0])] for arm, values in losses.items()}, REFERENCE)
    assert "no test is possible" in Verdict(one, contrasts(one.losses, None), None, 1).text()
    table, figure = ladder({0.25: comparison, 1.0: comparison}, {"best-4x": "best-4x (width-zero)"})
    assert [c for c in table.columns if c.endswith("p (Holm)")] == ["0.25x: p (Holm)", "1x: p (Holm)"]
    assert [row[0] for row in table.rows][-2:] == ["paper", "best-4x (width-zero)"]
    assert isinstance(figure, Figure)


def test_a_ladder_names_the_best_arm_by_its_pick_only_where_every_budget_picked_the_same():
    def rung(budget: float, picked: str) -> Rung:
        return Rung(budget, {}, {b: best_variant(b, KNOWN[picked]) for b in BEST}, picked)

    same = ladder_labels([rung(0.25, "width-copy"), rung(1, "width-copy")])
    assert same == {"best-4x": "best-4x (width-copy)", "best-late": "best-late (width-copy)"}
    varied = ladder_labels([rung(0.25, "width-copy"), rung(1, "width-zero-frozen")])
    assert varied["best-4x"] == "best-4x (the best width arm of each budget)"
