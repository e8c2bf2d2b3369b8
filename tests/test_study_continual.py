"""growlm study continual at smoke scale: every arm adds the same FLOPs, the base stays frozen where it should,
identity growth is exact, and a composed arm is the composition of its two models."""

import json

import pytest
import torch

from growlm.cli import main
from growlm.study.continual import ARMS, COMPOSITIONS, REFERENCE, SCALES
from growlm.study.sweep import HELD_OUT_SEED
from growlm.train.rundir import RunDir

SEEDS = SCALES["smoke"].seeds


@pytest.fixture(scope="module")
def study(module_tmp):
    out = module_tmp("continual") / "study"
    assert main(["study", "continual", "--scale", "smoke", "--out", str(out)]) == 0
    return out, json.loads((out / "study.json").read_text())


def table(data: dict, title: str) -> dict[str, dict]:
    [t] = [t for t in data["tables"] if t["title"] == title]
    return {row[0]: dict(zip(t["columns"], row)) for row in t["rows"]}


def runs(out, arm: str) -> list[RunDir]:
    [lr] = {p.parent for p in (out / "runs" / arm).glob("lr-*/seed-0")}
    return [RunDir(lr / f"seed-{s}") for s in range(SEEDS)]


def tensors(model) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for f in sorted(model.glob("*.safetensors")) for k, v in load_file(f).items()}


@pytest.mark.slow
def test_every_arm_adds_the_same_training_flops(study):
    out, data = study
    rows = table(data, "Adding a language: every arm at equal added FLOPs")
    assert set(rows) == {*(a.name for a in ARMS), *COMPOSITIONS}
    for arm in ARMS:
        base = [RunDir(out / "runs" / "base" / f"seed-{s}").read_summaries()[-1].flops for s in range(SEEDS)]
        reference = [r.read_summaries()[-1].flops - b for r, b in zip(runs(out, REFERENCE), base)]
        total = [r.read_summaries()[-1].flops for r in runs(out, arm.name)]
        added = [t - b for t, b in zip(total, base)] if arm.kind in ("branch", "joint") else total
        for a, f in zip(added, reference):
            assert abs(a / f - 1) < 0.02, arm.name  # equal added FLOPs within 2%
        ratio = float(rows[arm.name]["added FLOPs (x fine-tune)"].split("(")[1].rstrip("x)"))
        assert abs(ratio - 1) < 0.02


@pytest.mark.slow
def test_the_base_is_bit_identical_under_grow_frozen_and_identity_growth_changes_no_loss(study):
    out, _ = study
    depth = SCALES["smoke"].base_blocks
    for s, run in enumerate(runs(out, "grow-frozen")):
        base = tensors(RunDir(out / "runs" / "base" / f"seed-{s}").stage_model(1))
        grown = tensors(run.stage_model(2))
        kept = [k for k in base if k.startswith("model.embed_tokens") or any(f"layers.{i}." in k for i in range(depth))]
        assert len(kept) > 10 and all(torch.equal(base[k], grown[k]) for k in kept)
        assert any(f"layers.{depth}." in k for k in grown)  # the new block
        first, second = run.read_summaries()
        assert second.val_loss_at_start == first.val_loss  # identity growth: exactly the base's loss
    # fine-tuning does move the base
    base = tensors(RunDir(out / "runs" / "base" / "seed-0").stage_model(1))
    tuned = tensors(runs(out, "fine-tune")[0].stage_model(2))
    assert not torch.equal(base["model.layers.0.mlp.up_proj.weight"], tuned["model.layers.0.mlp.up_proj.weight"])


@pytest.mark.slow
def test_a_composed_arm_is_the_composition_of_its_two_models(study):
    from transformers import AutoModelForCausalLM

    from growlm.composition import load_composed

    out, _ = study
    ids = torch.randint(0, 65536, (2, 12), generator=torch.Generator().manual_seed(0))
    base = AutoModelForCausalLM.from_pretrained(RunDir(out / "runs" / "base" / "seed-0").stage_model(1))
    expert = AutoModelForCausalLM.from_pretrained(runs(out, "expert")[0].stage_model(1))
    with torch.no_grad():
        a, b = base(input_ids=ids).logits, expert(input_ids=ids).logits
        mean = load_composed(out / "composed" / "seed-0" / "composed-mean-logits" / "model")(input_ids=ids).logits
        fixed = load_composed(out / "composed" / "seed-0" / "composed-fixed-share" / "model")(input_ids=ids).logits
    torch.testing.assert_close(mean, (a + b) / 2, rtol=1e-5, atol=1e-5)
    # before any evidence the posterior is the prior: the experts' probabilities mixed half and half
    mixed = torch.log((a[:, 0].softmax(-1) + b[:, 0].softmax(-1)) / 2)
    torch.testing.assert_close(fixed[:, 0].log_softmax(-1), mixed, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_rates_come_from_a_held_out_seed_and_the_table_pairs_with_fine_tune(study):
    out, data = study
    for arm in ARMS:
        assert len(list((out / "runs" / arm.name).glob(f"lr-*/seed-{HELD_OUT_SEED}"))) == len(SCALES["smoke"].lrs)
    rows = table(data, "Forgetting and learning, paired with fine-tune")
    measures, before = data["measures"], data["before"]
    for arm, row in rows.items():
        forgetting = [m["first"] - b["first"] for m, b in zip(measures[arm], before)]
        reference = [m["first"] - b["first"] for m, b in zip(measures[REFERENCE], before)]
        cell = row["en loss change (forgetting): Δ vs fine-tune [95% CI]"]
        if arm == REFERENCE:
            assert cell is None
        else:
            diff = sum(f - r for f, r in zip(forgetting, reference)) / SEEDS
            assert cell.startswith(f"{diff:+.3f}")
    assert (out / "plots" / "forgetting-vs-gain.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "report.html").is_file()


def test_continual_refuses_sources_of_one_language(tmp_path, capsys):
    out = tmp_path / "c"
    args = ["study", "continual", "--scale", "smoke", "--out", str(out), "--new-source", "debian-handbook-en"]
    assert main(args) == 2
    assert "give two languages" in capsys.readouterr().err and not out.exists()
    assert main(["study", "depth", "--scale", "smoke", "--out", str(out), "--new-source", "fortunes-ru"]) == 2
    assert "unrecognized arguments: --new-source" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_the_per_seed_table_holds_the_numbers_behind_the_means(study):
    _, data = study
    [t] = [t for t in data["tables"] if t["title"] == "Every model, seed by seed"]
    rows = {(r[0], r[1]): dict(zip(t["columns"], r)) for r in t["rows"]}
    en = t["columns"][2]
    for arm, measures in data["measures"].items():
        for seed, (m, b) in enumerate(zip(measures, data["before"])):
            row = rows[(arm, seed)]
            assert row[en] == round(m["first"], 4)
            assert row[t["columns"][3]] == round(m["first"] - b["first"], 4)
    assert {k[0] for k in rows} == {"base (before)", *data["measures"]}


@pytest.mark.slow
def test_finished_runs_drop_their_checkpoints_but_the_bases_the_arms_branch_from(study):
    from growlm.train.checkpoint import latest_checkpoint

    out, _ = study
    bases = [RunDir(p) for p in sorted((out / "runs" / "base").glob("seed-*"))]
    assert bases and all(latest_checkpoint(b.checkpoints).name.endswith("-stage-end") for b in bases)
    arms = [RunDir(p.parent) for p in (out / "runs").glob("*/lr-*/seed-*/config.resolved.toml")]
    assert len(arms) > len(ARMS) and not any(r.checkpoints.exists() for r in arms)
    assert all(r.stage_model(len(r.read_summaries())).is_dir() for r in arms)
