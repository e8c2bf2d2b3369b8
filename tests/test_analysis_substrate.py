"""analyze substrate: neighbours, histograms data, collisions and rank of a substrate folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from growlm.analysis.substrate import analyze_substrate, visible
from growlm.cli import main
from growlm.substrate.binary import build_binary
from growlm.substrate.store import make_substrate
from growlm.tokenizer import default_tokenizer
from growlm.tokenizer.layout import LAYOUT_ID

VOCAB, DIM = 4096, 64


def save(tmp_path, matrix: np.ndarray, kind: str = "random"):
    path = tmp_path / kind
    make_substrate(matrix, kind, {}, LAYOUT_ID).save(path)
    return path


def lookalike_substrate() -> np.ndarray:
    """Random unit rows, except: O is a slight variation of 0, and B and 8 share one row (a collision)."""
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((VOCAB, DIM)).astype(np.float32)
    matrix[ord("O")] = matrix[ord("0")] + 0.1 * matrix[ord("O")]
    matrix[ord("B")] = matrix[ord("8")]
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_neighbours_find_lookalikes_and_collisions(tmp_path):
    path = save(tmp_path, lookalike_substrate())
    report = analyze_substrate(path, default_tokenizer(), ["O", "B", "x"], k=3)
    (first, _, cos_o), *_ = report.neighbours["O"]
    assert first == "0" and 0.98 < cos_o < 1.0
    # float32 cosines and norms of unit rows: 1 within a few ulps, not exactly
    assert report.neighbours["B"][0] == ("8", ord("8"), pytest.approx(1.0, abs=1e-5))
    assert all(abs(cos) < 0.6 for _, _, cos in report.neighbours["x"])
    assert report.summary["groups of identical rows"] == 1 and report.summary["rows in such groups"] == 2
    # Random unit rows in 64 dimensions: pair cosines centre on 0 with spread ~ 1/sqrt(d).
    assert abs(report.summary["pair cosine mean"]) < 0.01
    assert report.summary["pair cosine std"] == pytest.approx(1 / np.sqrt(DIM), rel=0.1)
    assert report.summary["row norm min"] == pytest.approx(1.0, abs=1e-5)


def test_binary_substrate_shows_rank_sixteen_or_less(tmp_path):
    path = save(tmp_path, build_binary(VOCAB, DIM), kind="binary")
    report = analyze_substrate(path, default_tokenizer(), ["A"], k=2)
    assert report.summary[f"rank of {4 * DIM} sampled rows"] == 12  # 4096 ids use 12 of the 16 bits
    assert report.summary["zero rows"] == 1  # id 0


def test_command_writes_outputs_and_prints_tables(tmp_path, capsys):
    path = save(tmp_path, lookalike_substrate())
    out = tmp_path / "analysis"
    assert main(["analyze", "substrate", str(path), "--tokens", "O", "a", "-k", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Nearest neighbours" in printed and "0 0.99" in printed
    data = json.loads((out / "substrate.json").read_text())
    assert [n["token"] for n in data["neighbours"]["O"]][0] == "0"
    assert len(data["neighbours"]["a"]) == 4
    assert (out / "histograms.png").read_bytes().startswith(b"\x89PNG")
    assert "| O | 0 0.99" in (out / "substrate.md").read_text()
    assert main(["analyze", "substrate", str(path), "--out", str(out), "--tokens", "O"]) == 2
    assert "--force" in capsys.readouterr().err


def test_default_output_sits_next_to_the_substrate(tmp_path):
    path = save(tmp_path, lookalike_substrate())
    assert main(["analyze", "substrate", str(path), "--tokens", "O"]) == 0
    assert (tmp_path / "random-analysis" / "substrate.json").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tokens", "xyz"], "not in the vocabulary"),
        (["--tokens", "中"], "not in the vocabulary"),  # beyond this substrate's 4,096 rows
    ],
)
def test_bad_tokens_are_clear_errors(tmp_path, capsys, args, message):
    path = save(tmp_path, lookalike_substrate())
    assert main(["analyze", "substrate", str(path), *args, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_substrate_is_a_clear_error(tmp_path, capsys):
    assert main(["analyze", "substrate", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not a substrate folder" in capsys.readouterr().err


def test_visible_names_whitespace_and_controls():
    assert visible("a b\n") == "a⟨U+0020⟩b⟨U+000A⟩"
    assert visible("中") == "中"
