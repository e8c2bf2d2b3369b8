import json

import pytest

from growlm.cli import main
from growlm.data.mix import check_weights, parse_sources
from growlm.data.prepare import prepare
from growlm.errors import GrowlmError
from growlm.tokenizer import default_tokenizer

CONFIG = "data.sources"
CLI = "growlm data prepare --source"


@pytest.fixture(scope="module")
def folders(module_tmp):
    root = module_tmp("mix")
    out = {}
    words_by_name = {"latin": "alpha beta gamma delta", "cyrillic": "альфа бета гамма дельта"}
    for name, words in words_by_name.items():
        (root / name).mkdir()
        for i in range(12):
            (root / name / f"{i:02d}.txt").write_text(f"{words} {i}\n" * (i + 1), encoding="utf-8")
        out[name] = str(root / name)
    return out


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "entries, expected",
    [
        (["shakespeare"], [("shakespeare", None)]),
        (["a", "b"], [("a", None), ("b", None)]),
        (["fortunes-ru:0.25", "shakespeare:0.75"], [("fortunes-ru", 0.25), ("shakespeare", 0.75)]),
        (["/data/x:y.txt#text:2", "b:1e1"], [("/data/x:y.txt#text", 2.0), ("b", 10.0)]),
        (["C:/corpus"], [("C:/corpus", None)]),
    ],
)
def test_config_and_cli_entries_parse_identically(entries, expected):
    assert parse_sources(entries, CONFIG) == parse_sources(entries, CLI) == expected


def test_config_and_cli_give_the_same_shards(folders, tmp_path):
    entries = [folders["latin"], folders["cyrillic"]]
    cli = ["data", "prepare", "--source", entries[0], "--source", entries[1], "--out", str(tmp_path / "cli")]
    assert main(cli) == 0
    prepare(parse_sources(entries, CONFIG), default_tokenizer(), tmp_path / "config", progress=False)
    assert _files(tmp_path / "cli") == _files(tmp_path / "config")
    manifest = json.loads((tmp_path / "config" / "manifest.json").read_text())
    assert not manifest["weights_given"]  # no weights: proportional to tokens, not an equal mix
    assert [s["weight"] for s in manifest["sources"]] == pytest.approx(
        [s["splits"]["train"]["tokens"] / manifest["splits"]["train"]["tokens"] for s in manifest["sources"]]
    )


@pytest.mark.parametrize(
    "entries, match",
    [
        (["a:2", "b"], "give a weight to every source"),
        (["a", "b:0.5"], "give a weight to every source"),
        (["a:0", "b:1"], "positive numbers"),
        (["a:-1"], "positive numbers"),
        (["a:nan"], "positive numbers"),
        (["a:inf"], "positive numbers"),
        (["shakespeare:two"], "'two' in 'shakespeare:two' is not a number"),
        ([":2"], "no source name"),
        ([""], "no source name"),
    ],
)
def test_bad_entries_are_refused_naming_where(entries, match):
    for where in (CONFIG, CLI):
        with pytest.raises(GrowlmError, match=match) as err:
            parse_sources(entries, where)
        assert str(err.value).startswith(f"{where}: ") and "\n" not in str(err.value)


def test_partial_weights_refused_by_cli_and_prepare(folders, tmp_path, capsys):
    assert (
        main(
            [
                "data",
                "prepare",
                "--source",
                f"{folders['latin']}:2",
                "--source",
                folders["cyrillic"],
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert f"{CLI}: give a weight to every source" in capsys.readouterr().err
    with pytest.raises(GrowlmError, match="give a weight to every source"):
        prepare(
            [(folders["latin"], 2.0), (folders["cyrillic"], None)], default_tokenizer(), tmp_path / "y", progress=False
        )
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    check_weights([None, None], CONFIG)
    check_weights([1.0, 3.0], CONFIG)


def test_single_source_without_weight_gives_the_same_shards(folders, tmp_path):
    tok = default_tokenizer()
    parsed = parse_sources([folders["latin"]], CONFIG)
    assert parsed == [(folders["latin"], None)]
    new = prepare(parsed, tok, tmp_path / "new", progress=False)
    cli_before = prepare([(folders["latin"], None)], tok, tmp_path / "cli_before", progress=False)
    config_before = prepare([(folders["latin"], 1.0)], tok, tmp_path / "config_before", progress=False)
    assert _files(new) == _files(cli_before)
    old, now = _files(config_before), _files(new)
    assert old.keys() == now.keys()
    shard_files = [k for k in now if k != "manifest.json"]
    assert [old[k] for k in shard_files] == [now[k] for k in shard_files]
    m_old, m_new = (json.loads(m["manifest.json"]) for m in (old, now))
    assert [s["weight"] for s in m_new["sources"]] == [s["weight"] for s in m_old["sources"]] == [1.0]
    assert {**m_old, "weights_given": False} == m_new
