"""analyze tsne: word groups, per-layer vectors from hooks, separation scores, and the command's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import LlamaConfig, LlamaForCausalLM

from growlm.analysis.representations import representation_names, word_vectors
from growlm.analysis.separation import knn_purity, knn_purity_chance, silhouette
from growlm.analysis.word_groups import load_word_groups
from growlm.cli import main
from growlm.errors import GrowlmError
from growlm.model.folder import write_model
from growlm.tokenizer import default_tokenizer
from growlm.tokenizer.layout import BOS_ID, is_char_id

# Single-character words, so each word is exactly one token whose substrate row the tests can set.
SMALL_GROUPS = {
    "groups": {
        "g1": {"en": ["b", "c", "d"], "ru": ["б", "в", "г"]},
        "g2": {"en": ["f", "g", "h"], "ru": ["д", "ж", "з"]},
        "g3": {"en": ["k", "m", "n"], "ru": ["к", "л", "м"]},
        "g4": {"en": ["p", "q", "r"], "ru": ["н", "п", "р"]},
    }
}


def tiny_model(depth: int = 2, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=65536,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=depth,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def test_default_groups_cover_six_concepts_in_three_languages_without_byte_fallback():
    words = load_word_groups()
    assert {w.group for w in words} == {"numbers", "professions", "animals", "colours", "cities", "emotions"}
    for group in {w.group for w in words}:
        for language in ("en", "ru", "zh"):
            assert 8 <= sum(w.group == group and w.language == language for w in words) <= 12
    ids = default_tokenizer().encode_batch([w.text for w in words])
    assert all(is_char_id(i) for word_ids in ids for i in word_ids)


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"groups": {"a": ["x", "y"], "b": ["y", "z"]}}, "in both"),
        ({"groups": {"a": ["x", "y", "z"]}}, "at least 2 groups"),
        ({"groups": {"a": ["x"], "b": ["y", "z"]}}, "at least 2 groups"),
        ({"groups": {"a": {"en": ["x", ""]}, "b": ["y", "z"]}}, "non-empty strings"),
        ({"words": ["x"]}, "expected"),
    ],
)
def test_bad_groups_files_are_clear_errors(tmp_path, groups, message):
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(groups))
    with pytest.raises(GrowlmError, match=message):
        load_word_groups(path)


def test_scores_separate_clusters_from_noise():
    rng = np.random.default_rng(0)
    labels = [g for g in "abcd" for _ in range(10)]
    centres = rng.standard_normal((4, 32)) * 5
    clustered = np.repeat(centres, 10, axis=0) + rng.standard_normal((40, 32)) * 0.3
    noise = rng.standard_normal((40, 32))
    assert silhouette(clustered, labels) > 0.8
    assert abs(silhouette(noise, labels)) < 0.1
    assert knn_purity(clustered, labels, k=5) == 1.0
    assert knn_purity(noise, labels, k=5) < 0.5
    assert knn_purity_chance(labels) == pytest.approx(9 / 39)
    assert silhouette(noise, ["a"] * 40) is None


def test_hooks_capture_attention_and_block_outputs_of_every_layer():
    model = tiny_model(depth=3)
    words = [[ord(c)] for c in "abcdef"]
    vectors = word_vectors(model, words, bos_id=BOS_ID)
    assert list(vectors) == representation_names(3)
    embedding = model.get_input_embeddings().weight.detach().numpy()
    # Exact: a one-token word's substrate vector is a copy of its embedding row (a mean over one row).
    np.testing.assert_allclose(vectors["substrate"], embedding[[ord(c) for c in "abcdef"]], rtol=0, atol=0)
    block_input = torch.tensor(vectors["substrate"])
    for i, layer in enumerate(model.model.layers, start=1):
        attention = torch.tensor(vectors[f"layer{i}.attention"])
        block = torch.tensor(vectors[f"layer{i}.block"])
        # A Llama block: h = x + attention(norm(x)); out = h + mlp(norm(h)).
        with torch.no_grad():
            expected = block_input + attention + layer.mlp(layer.post_attention_layernorm(block_input + attention))
        torch.testing.assert_close(block, expected, rtol=1e-4, atol=1e-5)
        block_input = block


def test_vectors_are_token_means_and_do_not_depend_on_batching():
    model = tiny_model()
    words = [[ord("a")], [ord("b"), ord("c"), ord("d")], [ord("e"), ord("f")], [0x4E2D]]
    one_by_one = word_vectors(model, words, bos_id=BOS_ID, batch_size=1)
    batched = word_vectors(model, words, bos_id=BOS_ID, batch_size=4)
    for name in one_by_one:
        np.testing.assert_allclose(one_by_one[name], batched[name], rtol=1e-5, atol=1e-5)
    embedding = model.get_input_embeddings().weight.detach().numpy()
    # torch's and numpy's float32 means of three rows may round differently; with no absolute tolerance an entry
    # near zero would fail on one ulp.
    np.testing.assert_allclose(
        batched["substrate"][1], embedding[[ord("b"), ord("c"), ord("d")]].mean(0), rtol=1e-6, atol=1e-6
    )


def save_model(path, model: LlamaForCausalLM) -> None:
    write_model(model, default_tokenizer(), path, {"substrate": {"kind": "random", "sha256": None}})


def test_tsne_command_scores_a_substrate_built_to_separate_the_groups(tmp_path, capsys):
    model = tiny_model(depth=2)
    words = load_word_groups_from(tmp_path, SMALL_GROUPS)
    directions = torch.nn.functional.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(1)), dim=1)
    with torch.no_grad():
        for word in words:
            group = int(word.group[1]) - 1
            model.get_input_embeddings().weight[ord(word.text)] = directions[group] + 0.05 * torch.randn(16)
    save_model(tmp_path / "model", model)
    out = tmp_path / "tsne"
    assert (
        main(["analyze", "tsne", str(tmp_path / "model"), "--groups", str(tmp_path / "groups.json"), "--out", str(out)])
        == 0
    )
    assert "layer2.block" in capsys.readouterr().out
    result = json.loads((out / "tsne.json").read_text())
    scores = {s["name"]: s for s in result["scores"]}
    assert list(scores) == representation_names(2)
    assert scores["substrate"]["silhouette_group"] > 0.8
    assert scores["substrate"]["knn_purity_group"] == 1.0
    assert scores["substrate"]["silhouette_language"] < 0.2
    assert result["knn_chance_group"] == pytest.approx(5 / 23)
    for name, xy in result["coordinates"].items():
        assert np.isfinite(np.array(xy)).all() and np.array(xy).shape == (24, 2), name
    with Image.open(out / "tsne.png") as panels:
        assert panels.width > panels.height > 300  # 2 rows x 3 columns
    assert (out / "scores.png").stat().st_size > 1000
    assert "silhouette (groups)" in (out / "scores.md").read_text()


def load_word_groups_from(tmp_path, groups: dict):
    (tmp_path / "groups.json").write_text(json.dumps(groups, ensure_ascii=False))
    return load_word_groups(tmp_path / "groups.json")


def test_tsne_command_refuses_bad_input_and_existing_output(tmp_path, capsys):
    load_word_groups_from(tmp_path, SMALL_GROUPS)
    groups = ["--groups", str(tmp_path / "groups.json")]
    assert main(["analyze", "tsne", str(tmp_path), *groups, "--out", str(tmp_path / "o")]) == 2
    assert "has no tokenizer" in capsys.readouterr().err
    save_model(tmp_path / "model", tiny_model(depth=1))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep").write_text("x")
    assert main(["analyze", "tsne", str(tmp_path / "model"), *groups, "--out", str(tmp_path / "o")]) == 2
    assert "--force" in capsys.readouterr().err
    assert (
        main(["analyze", "tsne", str(tmp_path / "model"), *groups, "--out", str(tmp_path / "p"), "--perplexity", "24"])
        == 2
    )
    assert "perplexity" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
