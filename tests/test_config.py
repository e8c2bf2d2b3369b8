import tomllib

import pytest

from growlm.config import load_config, to_toml, validate_config
from growlm.errors import GrowlmError


def test_overrides_reach_nested_lists_and_round_trip(tmp_path):
    cfg = load_config(
        None,
        [
            "growth.stages.0.tokens=5000",
            "train.lr=1e-3",
            "growth.stages.1={add_blocks=2}",
            "data.sources=['shakespeare:2', 'fortunes-en']",
        ],
    )
    assert cfg.growth.stages[0].tokens == 5000 and cfg.growth.stages[1].add_blocks == 2
    assert cfg.train.lr == 1e-3 and cfg.data.sources == ["shakespeare:2", "fortunes-en"]
    assert validate_config(tomllib.loads(to_toml(cfg))) == cfg


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.lrr=1", "unknown key 'train.lrr'"),
        ("model.n_heads=5", "divisible"),
        ("train.precision='fp16'", "train.precision"),
        ("growth.stages.3.lora=true", "not an index"),
        ("growth.stages.0.lora=true", "no frozen blocks"),
        ("train.batch_size=0", "train.batch_size"),
        ("novalue", "key=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(GrowlmError, match=message):
        load_config(None, [override])


def test_every_shipped_config_validates():
    from pathlib import Path

    configs = [
        p
        for p in sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.toml"))
        if not p.stem.endswith("-study")
    ]  # study configs are read by growlm.study
    assert len(configs) >= 7
    for path in configs:
        load_config(path)
