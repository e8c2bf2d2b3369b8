"""growlm.train.recipe: which config a run trains with, and what a resume may change."""

import pytest

from growlm.config import to_toml, validate_config
from growlm.errors import GrowlmError
from growlm.train.recipe import check_resume_overrides, prepare_run, run_config
from growlm.train.rundir import RunDir
from growlm.train.start import Branch, New, Resume

CFG = validate_config({"name": "r", "model": {"d_model": 32, "n_heads": 2}, "train": {"lr": 0.001}})


def test_a_resume_matches_configs_by_value_not_by_text(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config_file.write_text(to_toml(CFG))
    same = tmp_path / "same.toml"  # the same values, written another way
    same.write_text('# mine\nname = "r"\n[train]\nlr = 1e-3\n[model]\nn_heads = 2\nd_model = 32\n')
    cfg, _ = run_config(same, run.path, [], resume=True)
    assert cfg.model_dump() == CFG.model_dump()
    other = tmp_path / "other.toml"
    other.write_text('name = "r"\n[train]\nlr = 2e-3\n[model]\nn_heads = 2\nd_model = 32\n')
    with pytest.raises(GrowlmError, match="differs from the config"):
        run_config(other, run.path, [], resume=True)
    cfg, _ = run_config(CFG, run.path, [], resume=True)  # a RunConfig, as the studies pass it
    assert cfg == CFG


def test_a_resume_may_change_only_what_does_not_train():
    check_resume_overrides(["train.log_every=5", "train.threads=1"])
    with pytest.raises(GrowlmError, match="cannot change"):
        check_resume_overrides(["train.lr=0.1"])


def test_how_a_run_starts_is_one_argument(tmp_path, capsys):
    from growlm.cli import main

    with pytest.raises(GrowlmError, match="`resume` needs `out`"):
        prepare_run(None, None, [], Resume())
    with pytest.raises(GrowlmError, match=r"`base` .*: not a growlm run directory"):
        prepare_run(CFG, tmp_path / "branch", [], Branch(tmp_path / "no-base"))
    assert not (tmp_path / "branch").exists()
    cfg, run = prepare_run(CFG, tmp_path / "new", [], New(force=True))
    assert cfg == CFG and run.path == tmp_path / "new"
    assert main(["grow", "--resume", "--out", str(tmp_path / "x"), "--from", str(tmp_path / "base")]) == 2
    assert "drop --resume (or --from)" in capsys.readouterr().err


def _tensors(model_folder):
    from safetensors.torch import load_file

    return {k: v for f in sorted(model_folder.glob("*.safetensors")) for k, v in load_file(f).items()}


@pytest.mark.slow
def test_a_branch_of_a_finished_run_ends_as_the_uninterrupted_run_and_leaves_the_base_alone(tiny_config, tmp_path):
    import hashlib

    import torch

    from growlm.cli import main
    from growlm.config import load_config

    two = tiny_config(extra="", name="two.toml")
    one = tmp_path / "one.toml"  # the same config with only its first stage
    text = two.read_text()
    first = text.index("[[growth.stages]]")
    second = text.index("[[growth.stages]]", first + 1)
    one.write_text(text[:second] + text[text.index("[train]") :])
    assert main(["grow", str(one), "--out", str(tmp_path / "base")]) == 0
    assert main(["grow", str(two), "--out", str(tmp_path / "straight")]) == 0
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "base").rglob("*") if p.is_file()}
    assert main(["grow", str(two), "--out", str(tmp_path / "branch"), "--from", str(tmp_path / "base")]) == 0
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "base").rglob("*") if p.is_file()}
    assert after == before  # the base is only read
    branch, straight = RunDir(tmp_path / "branch"), RunDir(tmp_path / "straight")
    a, b = _tensors(branch.stage_model(2)), _tensors(straight.stage_model(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [s.val_loss for s in branch.read_summaries()] == [s.val_loss for s in straight.read_summaries()]
    assert branch.read_manifest()["branched_from"]["stages"] == 1
    assert load_config(branch.config_file).model_dump() == load_config(two).model_dump()


def test_a_branch_must_train_the_bases_stages_exactly(tiny_config, tmp_path, capsys):
    from growlm.config import load_config
    from growlm.train.recipe import branch_mismatch

    two = load_config(tiny_config())
    one = validate_config(
        {**two.model_dump(), "growth": {**two.growth.model_dump(), "stages": two.model_dump()["growth"]["stages"][:1]}}
    )
    assert branch_mismatch(one, two) is None
    assert "adds none" in branch_mismatch(two, two)
    changed = validate_config({**two.model_dump(), "train": {**two.train.model_dump(), "lr": 0.01}})
    assert "train.lr" in branch_mismatch(one, changed)
    logs = validate_config({**two.model_dump(), "train": {**two.train.model_dump(), "log_every": 7}})
    assert branch_mismatch(one, logs) is None  # what a resume may change, a branch may too
    stage = validate_config(
        {
            **two.model_dump(),
            "growth": {
                **two.growth.model_dump(),
                "stages": [{"add_blocks": 2, "tokens": 512}, two.model_dump()["growth"]["stages"][1]],
            },
        }
    )
    assert "growth.stages.0" in branch_mismatch(one, stage)
    operator = validate_config({**two.model_dump(), "growth": {**two.growth.model_dump(), "init": "identity"}})
    assert branch_mismatch(one, operator) is None  # the first stage is random under every operator


def test_a_stage_mixture_round_trips_through_the_resolved_config():
    cfg = validate_config({"growth": {"stages": [{"add_blocks": 1, "data": {"fortunes-en": 0.9, "/data/x.txt": 0.1}}]}})
    assert validate_config(__import__("tomllib").loads(to_toml(cfg))).model_dump() == cfg.model_dump()
    with pytest.raises(GrowlmError, match="positive sum"):
        validate_config({"growth": {"stages": [{"add_blocks": 1, "data": {"fortunes-en": 0.0}}]}})
