"""growlm.train.recipe: which config a run trains with, and what a resume may change."""

import pytest

from growlm.config import to_toml, validate_config
from growlm.errors import GrowlmError
from growlm.train.recipe import check_resume_overrides, run_config
from growlm.train.rundir import RunDir

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
