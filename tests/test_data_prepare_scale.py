"""Streaming `prepare` at scale: byte-identical to the earlier in-memory implementation, independent of the number
of workers, resumable after a kill. EXPECTED holds the sha256 (16 hex digits) of every file the earlier
implementation (growlm before the streaming rewrite) wrote for the corpus below; the manifest is hashed without
`created_by` and with the input files' hashes checked here instead (Parquet/Arrow bytes vary with pyarrow)."""

import hashlib
import json
import os
import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import growlm.faults
from growlm.data import pool as pool_module
from growlm.data.prepare import prepare
from growlm.data.work import work_folder
from growlm.errors import GrowlmError
from growlm.io.hashing import sha256_file
from growlm.io.ownership import MARK_FILE
from growlm.tokenizer import build_tokenizer

WORDS = (
    "the quick brown fox jumps over lazy dogs and cats быстрая рыжая лиса прыгает 我们的人民在新年里发表讲话 "
    "é ü 😀 \u2028 "
).split(" ")
TOKENIZER_SHA256 = "da925e0c44cbaf4a1545797a4639dbe121e576c055427d221ff631336be1850e"
N_FILES = {"default": 45, "capped": 43}  # 41 in corpus/a, b.jsonl, c.parquet, 2 in corpus/d


def _text(rng, lo=2, hi=40):
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(lo, hi))) for _ in range(rng.randint(1, 5))]
    return "\n".join(lines)


def _text_files(rng, a):
    (a / "sub").mkdir(parents=True)
    for i in range(40):
        raw = _text(rng).encode("utf-8")
        if i % 5 == 0:
            raw = raw.replace(b"\n", b"\r\n") + b"\r\n\n"
        if i % 7 == 0:
            raw = b"\xef\xbb\xbf" + raw + b" bad \xff\xfe\xc3 byte\x0c end"
        (a / ("sub" if i % 3 else "") / f"doc{i:02d}{'.md' if i % 4 == 0 else '.txt'}").write_bytes(raw)
    (a / "blank.txt").write_bytes(b"\n \n")


def _jsonl(rng, path):
    rows = []
    for k in range(260):
        r = rng.random()
        text = None if r < 0.1 else ("  " if r < 0.15 else _text(rng))
        ascii_only = k % 2 == 0 or "\u2028" in (text or "")  # a raw U+2028 would split the line
        rows.append("" if r < 0.05 else json.dumps({"text": text, "n": k}, ensure_ascii=ascii_only))
    data = ("\r\n".join(rows) + "\n").encode("utf-8")
    data = data.replace("лиса".encode(), b"\xd0\xbb\xd0 \xff", 3)
    path.write_bytes(b"\xef\xbb\xbf" + data)


def _arrow_files(rng, d):
    d.mkdir()
    for j, fmt in enumerate(("stream", "file")):
        table = pa.table({"text": [_text(rng) for _ in range(90)]})
        with pa.OSFile(str(d / f"part{j}.arrow"), "wb") as sink:
            open_writer = pa.ipc.new_stream if fmt == "stream" else pa.ipc.new_file
            with open_writer(sink, table.schema) as w:
                for batch in table.to_batches(max_chunksize=25):
                    w.write_batch(batch)


def golden_corpus(root):
    """Text files (BOM, CRLF, undecodable bytes, U+2028), JSONL (blank, null and empty records), Parquet with
    small row groups, Arrow stream and file formats."""
    rng = random.Random(1234)
    _text_files(rng, root / "a")
    _jsonl(rng, root / "b.jsonl")
    bodies = [None if k % 17 == 0 else ("" if k % 13 == 0 else _text(rng, 5, 80)) for k in range(300)]
    pq.write_table(pa.table({"id": list(range(300)), "body": bodies}), root / "c.parquet", row_group_size=64)
    _arrow_files(rng, root / "d")


NAMES = {"a": "corpus/a", "b": "corpus/b.jsonl", "c": "corpus/c.parquet#body", "d": "corpus/d"}  # from root


RUNS = {
    "default": lambda s: {"sources": [(s[k], None) for k in "abcd"]},
    "zero": lambda s: {"sources": [(s["d"], None)], "val_fraction": 0.0, "seed": 2},
    "capped": lambda s: {
        "sources": [(s["b"], 3.0), (s["a"], 1.0), (s["c"], 2.0)],
        "val_fraction": 0.2,
        "seed": 5,
        "max_chars": 7000,
    },
}
EXPECTED = {
    "default": {
        "00-corpus_a.train.docs.json": "1b445dfb09e8b587",
        "00-corpus_a.train.offsets.npy": "aaae9b963b6a5284",
        "00-corpus_a.train.tokens.bin": "d2b31d9d4d00af24",
        "00-corpus_a.val.docs.json": "b7081b6cadb62def",
        "00-corpus_a.val.offsets.npy": "cedb86a767c2367f",
        "00-corpus_a.val.tokens.bin": "b4490e595783b42b",
        "01-corpus_b.jsonl.train.docs.json": "b5cfe4e02c21484b",
        "01-corpus_b.jsonl.train.offsets.npy": "7e029850e8930ccd",
        "01-corpus_b.jsonl.train.tokens.bin": "59c66f2e3129c594",
        "01-corpus_b.jsonl.val.docs.json": "5263c8e37df0a8d3",
        "01-corpus_b.jsonl.val.offsets.npy": "2caab3178c43bd48",
        "01-corpus_b.jsonl.val.tokens.bin": "2385e8a0c47ba39f",
        "02-corpus_c.parquet_body.train.docs.json": "0c0b0f6c618aefd0",
        "02-corpus_c.parquet_body.train.offsets.npy": "20eb22b84467fca4",
        "02-corpus_c.parquet_body.train.tokens.bin": "3c51b46620b438f7",
        "02-corpus_c.parquet_body.val.docs.json": "9d5415ca3bc6935f",
        "02-corpus_c.parquet_body.val.offsets.npy": "c63943ccb1d8d248",
        "02-corpus_c.parquet_body.val.tokens.bin": "5aabcd3b4c261166",
        "03-corpus_d.train.docs.json": "f57ba1e052996c6d",
        "03-corpus_d.train.offsets.npy": "f397605a7ed87ed3",
        "03-corpus_d.train.tokens.bin": "247ae76059d1ff02",
        "03-corpus_d.val.docs.json": "7fa49bcee1aaf0a6",
        "03-corpus_d.val.offsets.npy": "1dc2256bd479251d",
        "03-corpus_d.val.tokens.bin": "b45ecd18b3263b8c",
        "manifest": "7625acf3287b834c",
    },
    "zero": {
        "00-corpus_d.train.docs.json": "c4e90558a23e4f52",
        "00-corpus_d.train.offsets.npy": "def16d5db9ebcf77",
        "00-corpus_d.train.tokens.bin": "89f5895b97b02c13",
        "00-corpus_d.val.docs.json": "4f53cda18c2baa0c",
        "00-corpus_d.val.offsets.npy": "f6df0000bed676f0",
        "00-corpus_d.val.tokens.bin": "e3b0c44298fc1c14",
        "manifest": "dfc8f331ac7eb192",
    },
    "capped": {
        "00-corpus_b.jsonl.train.docs.json": "ed7cc8dc138cd54f",
        "00-corpus_b.jsonl.train.offsets.npy": "3a73f56fe42b3e75",
        "00-corpus_b.jsonl.train.tokens.bin": "1727a6eadad99caa",
        "00-corpus_b.jsonl.val.docs.json": "cb10b5d65b505221",
        "00-corpus_b.jsonl.val.offsets.npy": "ee745d17b1ce2f7b",
        "00-corpus_b.jsonl.val.tokens.bin": "02ca0acddb989fb8",
        "01-corpus_a.train.docs.json": "fc266dc26007d1ae",
        "01-corpus_a.train.offsets.npy": "c441208b33e1222a",
        "01-corpus_a.train.tokens.bin": "83bfa1529e6e8393",
        "01-corpus_a.val.docs.json": "12ef45e1331805c6",
        "01-corpus_a.val.offsets.npy": "6c6827bd5dc80fbc",
        "01-corpus_a.val.tokens.bin": "b8d0f80cde1dadda",
        "02-corpus_c.parquet_body.train.docs.json": "d3d80a093f84e55b",
        "02-corpus_c.parquet_body.train.offsets.npy": "2f75a976d9a193ad",
        "02-corpus_c.parquet_body.train.tokens.bin": "95dbf773d684d123",
        "02-corpus_c.parquet_body.val.docs.json": "c4b4df92861f40a5",
        "02-corpus_c.parquet_body.val.offsets.npy": "43f6e5bad5080d7d",
        "02-corpus_c.parquet_body.val.tokens.bin": "a1d4ceaa8f5ff312",
        "manifest": "3d8222de607f5b5d",
    },
}


@pytest.fixture(scope="module")
def corpus(module_tmp):
    root = module_tmp("golden")
    golden_corpus(root / "corpus")
    tok = build_tokenizer([" ".join(WORDS)] * 3, 10)
    assert tok.sha256 == TOKENIZER_SHA256  # else the tokenizer changed, not prepare
    return root, tok


def _hashes(out):
    m = json.loads((out / "manifest.json").read_text())
    m.pop("created_by")
    for s in m["sources"]:
        folder = s["name"].partition("#")[0]
        for rel, digest in s["files"].items():
            path = out.parent / (folder if folder.endswith((".jsonl", ".parquet")) else f"{folder}/{rel}")
            assert digest == sha256_file(path), rel
        s["files"] = sorted(s["files"])
        for entry in s["splits"].values():  # each written file's recorded hash is its own (and not in the golden)
            recorded = entry.pop("sha256")
            assert recorded == {name: sha256_file(out / name) for name in recorded}
            assert set(recorded) == {entry[key] for key in ("tokens_file", "offsets_file", "ids_file")}
    hashes = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(out.iterdir())
        if p.is_file() and p.name not in ("manifest.json", MARK_FILE)  # the mark says who made the folder
    }
    hashes["manifest"] = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16]
    return hashes


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("run", sorted(RUNS))
def test_output_is_byte_identical_to_the_in_memory_implementation(corpus, run, workers, monkeypatch):
    root, tok = corpus
    monkeypatch.chdir(root)
    kwargs = RUNS[run](NAMES)
    out = prepare(kwargs.pop("sources"), tok, f"{run}-{workers}", progress=False, workers=workers, **kwargs)
    assert _hashes(out) == EXPECTED[run]
    assert not work_folder(out).exists()  # the spools are removed once the shards are in place


def _finished(work):
    return sorted(p.name for p in work.iterdir() if (p / "task.json").is_file()) if work.exists() else []


@pytest.mark.parametrize("run", ["default", "capped"])
def test_resumes_after_a_kill_without_redoing_finished_files(corpus, run, monkeypatch, capsys):
    root, tok = corpus
    monkeypatch.chdir(root)
    kwargs = RUNS[run](NAMES)
    code = (
        f"from growlm.data.prepare import prepare; from growlm.tokenizer import load_tokenizer; "
        f"prepare({kwargs['sources']!r}, load_tokenizer('tok'), 'killed-{run}', progress=False, workers=1, "
        f"val_fraction={kwargs.get('val_fraction', 0.05)}, seed={kwargs.get('seed', 0)}, "
        f"max_chars={kwargs.get('max_chars')})"
    )
    tok.save(root / "tok")
    env = {**os.environ, "GROWLM_FAULT": "prepare:5"}  # SIGKILL once 5 files are done
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == -9, result.stderr
    work = work_folder(root / f"killed-{run}")
    kept = _finished(work)
    assert len(kept) == 5 and not (root / f"killed-{run}").exists()

    ran = []
    real_spool = pool_module.spool
    monkeypatch.setattr(pool_module, "spool", lambda job, *a: ran.append(job.folder) or real_spool(job, *a))
    out = prepare(kwargs.pop("sources"), tok, f"killed-{run}", progress=False, workers=1, **kwargs)
    assert f"5 of {N_FILES[run]} files already done" in capsys.readouterr().err
    assert not set(ran) & set(kept) and len([f for f in ran if not f.endswith(".tok")]) == N_FILES[run] - 5
    assert _hashes(out) == EXPECTED[run]


def test_ctrl_c_with_workers_keeps_finished_files_and_the_rerun_matches(corpus, monkeypatch, capsys):
    root, tok = corpus
    monkeypatch.chdir(root)
    monkeypatch.setattr(growlm.faults, "_HITS", {})
    monkeypatch.setenv("GROWLM_FAULT", "prepare:7:interrupt")
    kwargs = RUNS["default"](NAMES)
    with pytest.raises(KeyboardInterrupt):
        prepare(kwargs["sources"], tok, "interrupted", progress=False, workers=2)
    assert len(_finished(work_folder(root / "interrupted"))) >= 7 and not (root / "interrupted").exists()
    monkeypatch.delenv("GROWLM_FAULT")
    out = prepare(kwargs["sources"], tok, "interrupted", progress=False, workers=2)
    assert "files already done" in capsys.readouterr().err
    assert _hashes(out) == EXPECTED["default"]


def test_changed_inputs_are_not_taken_from_a_stale_work_folder(corpus, monkeypatch):
    root, tok = corpus
    monkeypatch.chdir(root)
    sources = [(NAMES["d"], None)]
    work = work_folder(root / "stale")
    work.mkdir()
    (work / "run.json").write_text('{"format": "something else"}')
    (work / "00-0000000").mkdir()
    (work / "00-0000000" / "task.json").write_text("{}")
    out = prepare(sources, tok, "stale", progress=False, val_fraction=0.0, seed=2, workers=1)
    assert _hashes(out) == EXPECTED["zero"]


def test_a_bad_file_fails_with_its_message_from_a_worker(tmp_path):
    (tmp_path / "c").mkdir()
    for i in range(3):
        (tmp_path / "c" / f"{i}.jsonl").write_text('{"text": "fine"}\n' + ("not json\n" if i == 2 else ""))
    with pytest.raises(GrowlmError, match=r"2\.jsonl line 2 is not JSON"):
        prepare([(str(tmp_path / "c"), None)], build_tokenizer(["fine"], 1), tmp_path / "o", progress=False, workers=2)
    with pytest.raises(GrowlmError, match="workers must be at least 1"):
        prepare([(str(tmp_path / "c"), None)], build_tokenizer(["fine"], 1), tmp_path / "o", workers=0)
