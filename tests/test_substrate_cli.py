"""`growlm substrate build|inspect` through growlm.cli.main: outputs, reports and error paths (exit 2)."""

from __future__ import annotations

import json

import pytest
import torch

from growlm.cli import main
from growlm.substrate import load_substrate
from growlm.tokenizer import build_tokenizer


def test_build_then_inspect_with_png(tmp_path, capsys):
    out, png = tmp_path / "bin", tmp_path / "bin.png"
    assert main(["substrate", "build", "--kind", "binary", "--dim", "32", "--out", str(out)]) == 0
    assert load_substrate(out).dim == 32
    assert main(["substrate", "inspect", str(out), "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert "65536 x 32" in text and "0 groups" in text and load_substrate(out).sha256 in text
    assert png.read_bytes().startswith(b"\x89PNG")
    assert main(["substrate", "inspect", str(out), "--png", str(png)]) == 2  # no silent overwrite
    assert main(["substrate", "inspect", str(out), "--png", str(png), "--force", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\nwrote ")[0])
    assert report["collision_groups"] == 0 and report["row_norm"]["max"] == pytest.approx(
        32**0.5
    )  # id 0xFFFF: all 32 values are 1


def test_visual_with_a_tokenizer_folder_has_distinct_ngrams(tmp_path, capsys):
    tok = build_tokenizer(["and ard " * 50, "the cat and the dog " * 20], 10)
    tok.save(tmp_path / "tok")
    out, png = tmp_path / "vis", tmp_path / "vis.png"
    assert (
        main(["substrate", "build", "--kind", "visual", "--tokenizer", str(tmp_path / "tok"), "--out", str(out)]) == 0
    )
    assert main(["substrate", "inspect", str(out), "--png", str(png)]) == 0
    assert " 0 groups" in capsys.readouterr().out and png.stat().st_size > 10_000
    sub = load_substrate(out)
    assert sub.manifest["params"]["tokenizer_sha256"] == tok.sha256
    ids = {text: i for i, text in tok.ngrams.items()}
    assert not torch.equal(sub.matrix[ids["and"]], sub.matrix[ids["ard"]])


def test_force_replaces_an_existing_output(tmp_path):
    out = tmp_path / "s"
    assert main(["substrate", "build", "--kind", "random", "--dim", "16", "--out", str(out)]) == 0
    assert main(["substrate", "build", "--kind", "random", "--dim", "16", "--out", str(out)]) == 2
    assert (
        main(["substrate", "build", "--kind", "random", "--dim", "16", "--seed", "1", "--out", str(out), "--force"])
        == 0
    )
    assert load_substrate(out).manifest["params"] == {"dim": 16, "seed": 1}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kind", "word2vec"], "unknown substrate kind"),
        (["--kind", "visual", "--cell", "24"], "unknown cell size 24"),
        (["--kind", "visual", "--recipe", "fancy"], "unknown recipe"),
        (["--kind", "visual", "--font", "/no/such/unifont.hex"], "apt-get install unifont"),
        (["--kind", "visual", "--dim", "100"], "d = cell**2"),
        (["--kind", "visual", "--recipe", "paper", "--seed", "3"], "--seed does not apply"),
        (["--kind", "visual", "--tokenizer", "/no/such/tokenizer"], "not a growlm tokenizer folder"),
        (["--kind", "binary", "--dim", "100"], "multiple of 16"),
        (["--kind", "binary", "--cell", "32"], "--cell does not apply"),
        (["--kind", "random", "--seed", "-1"], "out of range"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(tmp_path, capsys, args, message):
    assert main(["substrate", "build", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_font_that_is_not_a_font(tmp_path, capsys):
    bad = tmp_path / "font.hex"
    bad.write_text("0041:XYZ\n")
    assert main(["substrate", "build", "--kind", "visual", "--font", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"{bad}:1" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["font.hex"]


def test_inspect_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert main(["substrate", "inspect", str(tmp_path / "nothing")]) == 2
    assert "not a substrate folder" in capsys.readouterr().err
