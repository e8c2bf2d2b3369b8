import tomllib

import pytest

from growlm.config import load_config, to_toml, validate_config, with_values
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


def test_typed_values_make_the_same_config_as_the_same_set_strings():
    base = validate_config({})
    values = {"growth.stages.0.tokens": 4096, "train.lr": 1e-3, "data.sources": ["shakespeare", "fortunes-ru:2"]}
    typed = with_values(base, values)
    by_text = load_config(
        None, ["growth.stages.0.tokens=4096", "train.lr=1e-3", "data.sources=['shakespeare', 'fortunes-ru:2']"]
    )
    assert typed.model_dump() == by_text.model_dump() and to_toml(typed) == to_toml(by_text)
    assert typed.train.lr == 1e-3 and base.train.lr != 1e-3, "the base config is left alone"
    with pytest.raises(GrowlmError, match="unknown key 'train.learning_rate'"):
        with_values(base, {"train.learning_rate": 1e-3})
