from pathlib import Path

from growlm.cli import main

DEMO = Path(__file__).parent.parent / "configs" / "demo.toml"


def rows(out: str) -> dict[str, str]:
    """Table lines by key (the first column)."""
    return {line.split()[0]: line for line in out.splitlines() if line.strip()}


def test_explain_lists_every_key_with_type_default_allowed_and_description(capsys):
    from growlm.model.growth import INIT_OPERATORS

    assert main(["config", "explain"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["key"].split() == ["key", "type", "default", "allowed", "description"]
    lr = table["train.lr"]
    assert lr.split()[1:6] == ["float", "0.003", ">", "0,", "<="] and "peak learning rate of every stage" in lr
    assert ", ".join(INIT_OPERATORS) in table["growth.init"]
    assert "visual, binary, random, trainable" in table["substrate.kind"]
    assert "auto, bf16, fp32" in table["train.precision"]
    assert "training tokens in this stage" in table["growth.stages.N.tokens"]


def test_explain_with_a_config_shows_its_values_and_overrides(capsys):
    assert main(["config", "explain", str(DEMO), "--set", "train.lr=1e-3"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["key"].split() == ["key", "type", "default", "allowed", "value", "description"]
    assert table["name"].split()[:4] == ["name", "str", '"run"', '"demo"']
    assert "[120000, 80000, 80000, 80000, 80000, 80000]" in table["growth.stages.N.tokens"]
    assert "[false, false, false, false, true, true]" in table["growth.stages.N.lora"]
    assert table["train.lr"].split()[1:8] == ["float", "0.003", ">", "0,", "<=", "1e+06", "0.001"]


def test_an_unknown_override_names_the_closest_keys(capsys):
    assert main(["config", "explain", "--set", "train.learning_rate=1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'train.learning_rate'; did you mean train.lr?" in err
    assert main(["config", "explain", "--set", "novalue"]) == 2
    assert "override 'novalue': expected KEY=VALUE" in capsys.readouterr().err
