import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from growlm.cli import main
from growlm.errors import GrowlmError
from growlm.tokenizer import build_tokenizer, default_tokenizer, load_tokenizer
from growlm.tokenizer import layout as L

CORPUS = [
    "the thing is that the other thing then thinks of the theatre " * 20,
    "Привет, как дела? Это просто тест на русском языке, просто тест. " * 20,
    "中华人民共和国成立了。中华民族是伟大的民族。人民共和国 " * 20,
    "Ελληνικά γράμματα και λέξεις, γράμματα " * 10,
    "नमस्ते दुनिया, यह हिंदी है। नमस्ते " * 10,
]

valid_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], min_codepoint=0, max_codepoint=0x10FFFF), max_size=60
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(CORPUS, ngrams_per_script=40)


@pytest.fixture(scope="module")
def tok_dir(tok, module_tmp):
    out = module_tmp("tok")
    tok.save(out)
    return out


def test_single_characters_are_their_code_points():
    tok = default_tokenizer()
    assert tok.encode("Aж中") == [0x41, 0x436, 0x4E2D]
    assert tok.encode(" \n") == [0x20, 0x0A]


def test_specials_sit_at_e000_and_text_never_becomes_one():
    tok = default_tokenizer()
    assert tok.token_text(L.EOS_ID) == "</s>" and tok.decode([L.EOS_ID]) == "</s>"
    assert tok.encode("</s>") == [ord(c) for c in "</s>"]
    assert L.SPECIAL_TOKENS[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert len(L.NAMED_SPECIALS) == 23


def test_mining_covers_several_scripts(tok):
    scripts = {g.script for g in tok.ngram_info}
    assert {"LATIN", "CYRILLIC", "HAN", "GREEK", "DEVANAGARI"} <= scripts
    assert "the" in tok.ngrams.values() and "中华" in tok.ngrams.values()
    assert all(L.is_ngram_slot(i) for i in tok.ngrams)
    lengths = [len(tok.ngrams[i]) for i in sorted(tok.ngrams)]
    assert lengths == sorted(lengths, reverse=True), "n-grams are placed longest first"


def test_every_ngram_encodes_to_its_own_id(tok):
    for i, text in tok.ngrams.items():
        assert tok.encode(text) == [i], text


@functools.cache
def built_in():
    """The built-in tokenizer, built once for all examples (building it takes 0.1 s; encoding never changes it)."""
    return default_tokenizer()


@settings(max_examples=300, deadline=None)
@given(valid_text)
def test_round_trip_is_lossless_for_any_unicode(text):
    tok = built_in()
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert L.UNK_ID not in ids


@settings(max_examples=150, deadline=None)
@given(valid_text)
def test_round_trip_with_ngrams(tok, text):
    assert tok.decode(tok.encode(text + "the 中华")) == text + "the 中华"


def test_characters_outside_the_vocabulary_use_byte_fallback():
    tok = default_tokenizer()
    ids = tok.encode("😀\ue000")
    assert all(L.is_byte_id(i) for i in ids)
    assert [i - L.BYTE_BASE for i in ids] == list("😀\ue000".encode())


def test_save_load_and_autotokenizer_parity(tok, tok_dir):
    again = load_tokenizer(tok_dir)
    assert again.sha256 == tok.sha256 and again.ngrams == tok.ngrams
    hf = AutoTokenizer.from_pretrained(tok_dir)
    for text in CORPUS + ["😀 mixed \ue123 text\n\twith tabs", "  two  spaces  ", "<s>x</s>"]:
        ids = tok.encode(text)
        assert hf(text, add_special_tokens=True)["input_ids"] == ids
        assert hf.decode(ids) == tok.decode(ids) == text
    assert hf.eos_token_id == L.EOS_ID and hf.pad_token_id == L.PAD_ID
    assert len(hf) == L.VOCAB_SIZE


def test_build_is_deterministic():
    assert build_tokenizer(CORPUS, 40).sha256 == build_tokenizer(list(CORPUS), 40).sha256


def test_cli_build_encode_and_errors(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(CORPUS[0], encoding="utf-8")
    out = tmp_path / "tok"
    assert main(["tokenizer", "build", "--corpus", str(corpus), "--ngrams", "5", "--out", str(out)]) == 0
    meta = json.loads((out / "growlm_tokenizer.json").read_text())
    assert 0 < len(meta["ngrams"]) <= 10
    assert main(["tokenizer", "build", "--corpus", str(corpus), "--out", str(out)]) == 2  # exists
    assert "--force" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff\xfe")
    assert main(["tokenizer", "build", "--corpus", str(bad), "--out", str(tmp_path / "t2")]) == 2
    assert "offset 3" in capsys.readouterr().err
    assert not (tmp_path / "t2").exists()
    assert main(["tokenizer", "build", "--corpus", str(tmp_path / "missing"), "--out", str(tmp_path / "t3")]) == 2
    assert main(["tokenizer", "encode", "the", "--tokenizer", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == [load_tokenizer(out).encode("the")[0]]


def test_tokenizer_does_not_import_data():
    """The tokenizer package stands alone: growlm.data imports it, never the other way round."""
    code = (
        "import importlib, pkgutil, sys, growlm.tokenizer as t\n"
        "for m in pkgutil.iter_modules(t.__path__): importlib.import_module(f'growlm.tokenizer.{m.name}')\n"
        "print(sorted(m for m in sys.modules if m.startswith('growlm.data')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
    package = Path(__file__).resolve().parents[1] / "src" / "growlm" / "tokenizer"
    assert not [p.name for p in package.glob("*.py") if "growlm.data" in p.read_text(encoding="utf-8")]


def test_cli_refuses_negative_ngrams_and_ids_outside_the_vocabulary(tmp_path, capsys):
    for corpus in ([], ["--corpus", str(tmp_path / "c.txt")]):
        (tmp_path / "c.txt").write_text(CORPUS[0], encoding="utf-8")
        assert main(["tokenizer", "build", *corpus, "--ngrams", "-3", "--out", str(tmp_path / "t")]) == 2
        assert "must be 0 or more" in capsys.readouterr().err and not (tmp_path / "t").exists()
    with pytest.raises(GrowlmError, match="must be 0 or more"):
        build_tokenizer(CORPUS, -1)
    for ids in (["-1"], ["104", "65536"]):
        assert main(["tokenizer", "decode", *ids]) == 2
        assert "outside the vocabulary (0 to 65535)" in capsys.readouterr().err
    assert main(["tokenizer", "decode", "104", "65535"]) == 0
