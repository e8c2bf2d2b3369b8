import tomllib

import pytest

from growlm.config import dotted_patch, explain, load_config, overlay, parse_assignment, to_toml, validate_config
from growlm.config_schema import close_keys, leaf_fields
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
        ("growth.stages.3.lora=true", r"not an index of growth.stages, which has 1 entries \(0 to 0; 1 appends"),
        ("growth.stages.0.lora=true", "no frozen blocks"),
        ("train.batch_size=0", "train.batch_size"),
        ("novalue", "override 'novalue': expected KEY=VALUE"),
        ("train.lr.x=5", "train.lr is a single value, not a table"),
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


def test_typed_patches_make_the_same_config_as_the_same_set_strings():
    base = validate_config({})
    patch = {"growth": {"stages": {0: {"tokens": 4096}}}, "train": {"lr": 1e-3}}
    typed = overlay(base, patch, {"data": {"sources": ["shakespeare", "fortunes-ru:2"]}})
    by_text = load_config(
        None, ["growth.stages.0.tokens=4096", "train.lr=1e-3", "data.sources=['shakespeare', 'fortunes-ru:2']"]
    )
    assert typed.model_dump() == by_text.model_dump() and to_toml(typed) == to_toml(by_text)
    assert typed.train.lr == 1e-3 and base.train.lr != 1e-3, "the base config is left alone"
    with pytest.raises(GrowlmError, match=r"unknown key 'train.learning_rate'; did you mean train.lr\?"):
        overlay(base, {"train": {"learning_rate": 1e-3}})


def test_overlay_patches_a_list_entry_and_appends_at_its_length():
    base = load_config(None, ["growth.stages.1={add_blocks=2}"])
    grown = overlay(base, {"growth": {"stages": {1: {"tokens": 777}, 2: {"add_blocks": 3, "lora": True}}}})
    assert [s.tokens for s in grown.growth.stages] == [100_000, 777, 100_000]
    assert grown.growth.stages[1].add_blocks == 2, "a patched entry keeps its other values"
    assert grown.growth.stages[2].add_blocks == 3 and grown.growth.stages[2].lora
    replaced = overlay(grown, {"data": {"sources": ["fortunes-en"]}})
    assert replaced.data.sources == ["fortunes-en"], "a list value replaces the list"


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"growth": {"stages": {2: {"tokens": 5}}}}, "growth.stages.2: 2 is not an index of growth.stages"),
        ({"growth": {"stages": {"x": {"tokens": 5}}}}, "'x' is not an index of growth.stages"),
        ({"train": {"lr": {"peak": 1.0}}}, "train.lr is a single value, not a table; set it directly"),
        ({"train": {0: 1}}, "train.0: train is a table; its keys are names, not 0"),
        ({"growth": {"stage": {0: {"tokens": 5}}}}, r"unknown key 'growth.stage'; did you mean growth.stages\?"),
    ],
)
def test_overlay_refuses_what_the_config_cannot_hold_in_one_line(patch, message):
    with pytest.raises(GrowlmError, match=message) as err:
        overlay(validate_config({}), patch)
    assert "\n" not in str(err.value)


def test_a_mapping_value_is_replaced_but_a_dotted_key_sets_one_entry():
    base = load_config(
        None, ["data.sources=['shakespeare', 'fortunes-en']", "growth.stages.1={data={shakespeare=1.0}}"]
    )
    replaced = overlay(base, {"growth": {"stages": {1: {"data": {"fortunes-en": 1.0}}}}})
    assert replaced.growth.stages[1].data == {"fortunes-en": 1.0}, "a stage's mixture is a value, as in TOML"
    assert load_config(None, ["growth.stages.1.data={fortunes-en=1.0}"], base=base).growth.stages[1].data == {
        "fortunes-en": 1.0
    }
    one_weight = load_config(None, ["growth.stages.1.data.fortunes-en=0.5"], base=base)
    assert one_weight.growth.stages[1].data == {"shakespeare": 1.0, "fortunes-en": 0.5}


@pytest.mark.parametrize(
    "key,value",
    [
        ("train.lr", 1e-3),
        ("growth.stages.0.tokens", 4096),
        ("data.sources", ["a", "b:2"]),
        ("substrate.kind", "binary"),
    ],
)
def test_dotted_patch_round_trips_with_load_config(key, value, tmp_path):
    cfg = overlay(validate_config({}), dotted_patch(key, value))
    path = tmp_path / "cfg.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    assert load_config(path) == cfg
    text = value if isinstance(value, str) else repr(value)
    assert load_config(None, [f"{key}={text}"]) == cfg, "what a user types makes the same config"
    assert parse_assignment(f" {key} ={text}") == dotted_patch(key, value)
    with pytest.raises(GrowlmError, match="is not a dotted config key"):
        dotted_patch("train..lr", 1)


@pytest.mark.parametrize(
    "typed,expected",
    [
        ("train.learning_rate", ["train.lr"]),
        ("train.lrr", ["train.lr"]),
        ("trian.lr", ["train.lr", "growth.stages.N.lr"]),
        ("modle", ["model"]),
        ("growth.stages.1.token", ["growth.stages.1.tokens"]),
        ("growth.stages.0.learning_rate", ["growth.stages.0.lr"]),
        ("model.lr", ["growth.stages.N.lr", "train.lr"]),
        ("train.warmup", ["train.warmup_frac", "train.warmup_tokens"]),
    ],
)
def test_unknown_keys_name_the_closest_known_ones(typed, expected):
    from growlm.config import RunConfig

    assert close_keys(RunConfig, typed) == expected
    with pytest.raises(GrowlmError, match="growlm config explain lists every key") as err:
        load_config(None, ["growth.stages.1={}", f"{typed}=1"])
    assert "did you mean " in str(err.value)  # for trian.lr: train? (validation names the first unknown level)


def test_an_unknown_key_with_nothing_close_still_says_where_the_keys_are(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[optimizer]\nname = 'adam'\n", encoding="utf-8")
    with pytest.raises(
        GrowlmError, match=r"bad.toml: unknown key 'optimizer' \(growlm config explain lists every key\)"
    ):
        load_config(path)


def test_explain_has_every_key_with_its_type_default_bounds_and_description():
    from growlm.model.growth import INIT_OPERATORS

    rows = {row.key: row for row in explain()}
    assert list(rows) == [key for key, _ in leaf_fields(type(validate_config({})))]
    assert all(row.description for row in rows.values()), "every key is described"
    lr = rows["train.lr"]
    assert (lr.type, lr.default, lr.allowed, lr.value) == ("float", "0.003", "> 0, <= 1e+06", None)
    assert rows["growth.init"].allowed == ", ".join(INIT_OPERATORS)
    assert "trainable" in rows["substrate.kind"].allowed.split(", ")
    assert (
        rows["train.precision"].allowed == "auto, bf16, fp32" and rows["train.loggers"].allowed == "tensorboard, wandb"
    )
    assert rows["growth.stages.N.lr"].type == "optional float" and rows["growth.stages.N.lr"].default == "unset"
    shown = {row.key: row.value for row in explain(load_config(None, ["growth.stages.1={tokens=5}", "train.lr=1e-3"]))}
    assert shown["growth.stages.N.tokens"] == "[100000, 5]" and shown["train.lr"] == "0.001"
