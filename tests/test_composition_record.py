"""The typed composition record: composition.json files in the layout `growlm compose` writes
(tests/assets/composition-*-v1.json, written by growlm before the types existed) read back and write back."""

import json
from pathlib import Path

import pytest

from growlm.composition import read_composition
from growlm.composition.record import Calibration, CalibrationSource, Composition, ExpertRef
from growlm.errors import GrowlmError
from growlm.io.atomic import atomic_write_json

ASSETS = Path(__file__).parent / "assets"
FILES = [
    "composition-mean-logits-v1.json",
    "composition-posterior-calibrated-v1.json",
    "composition-copied-calibrated-v1.json",
]


def load(name: str) -> dict:
    return json.loads((ASSETS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", FILES)
def test_a_composition_file_reads_and_writes_back_byte_for_byte(name, tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "composition.json").write_bytes((ASSETS / name).read_bytes())
    composition = read_composition(tmp_path / "c")
    assert composition.to_json() == load(name)
    assert Composition.from_json(composition.to_json()) == composition
    atomic_write_json(tmp_path / "again.json", composition.to_json())
    assert (tmp_path / "again.json").read_bytes() == (ASSETS / name).read_bytes()


def test_the_record_is_read_through_attributes():
    plain = Composition.from_json(load("composition-mean-logits-v1.json"))
    assert (plain.mode, plain.weights, plain.switch_rate, plain.calibration) == ("mean_logits", (0.25, 0.75), 0.0, None)
    assert plain.experts[0] == ExpertRef("../experts/a", plain.experts[0].sha256, 1)
    assert plain.substrate["kind"] == "binary" and plain.vocab_size == 65536 and len(plain.tokenizer_sha256) == 64
    posterior = Composition.from_json(load("composition-posterior-calibrated-v1.json"))
    calibration = posterior.calibration
    assert isinstance(calibration, Calibration) and calibration.switch_rate == posterior.switch_rate
    assert calibration.initial_switch_rate == 0.01 and calibration.tokens == 512
    assert isinstance(calibration.sources[0], CalibrationSource) and calibration.sources[0].path.endswith("cal.txt")
    copied = Composition.from_json(load("composition-copied-calibrated-v1.json"))
    assert [e.path for e in copied.experts] == ["experts/00", "experts/01"]
    assert copied.calibration.switch_rate is None and "switch_rate" not in copied.calibration.to_json()


def test_an_older_file_takes_defaults():
    data = load("composition-mean-logits-v1.json")
    for key in ("switch_rate", "files_sha256", "calibration"):
        del data[key]
    data["experts"] = [{k: v for k, v in e.items() if k != "depth"} for e in data["experts"]]
    old = Composition.from_json(data)
    assert old.switch_rate == 0.0 and old.files_sha256 is None and old.experts[0].depth is None
    assert "files_sha256" not in old.to_json()


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: d.pop("mode"), "missing the field 'mode'"),
        (lambda d: d["experts"][1].pop("sha256"), "expert 1: missing the field 'sha256'"),
        (lambda d: d["calibration"].pop("loss_before"), "calibration: missing the field 'loss_before'"),
        (lambda d: d["calibration"]["sources"][0].pop("sha256"), "calibration source 0: missing the field 'sha256'"),
        (lambda d: d.update(weights="0.5,0.5"), "weights must be a list of numbers"),
        (lambda d: d.update(experts={}), "experts must be a list"),
    ],
)
def test_a_damaged_file_is_a_one_line_error_naming_it(damage, message, tmp_path):
    data = load("composition-posterior-calibrated-v1.json")
    damage(data)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "composition.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(GrowlmError, match=message) as err:
        read_composition(tmp_path / "c")
    text = str(err.value)
    assert text.startswith(str(tmp_path / "c")) and "recompose with `growlm compose`" in text and "\n" not in text


def test_a_file_of_another_format_is_refused(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "composition.json").write_text('{"format": "growlm-composition-v0"}', encoding="utf-8")
    with pytest.raises(GrowlmError, match="not a 'growlm-composition-v1' file"):
        read_composition(tmp_path / "c")
