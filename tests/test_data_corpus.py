import itertools

import pytest

from growlm.data.corpus import corpus_files, corpus_texts, source_texts
from growlm.data.sources import iter_documents
from growlm.errors import GrowlmError


def test_corpus_texts_reads_files_and_folders_as_they_are(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("\nfirst\n\n", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("second", encoding="utf-8")
    (tmp_path / "sub" / "c.jsonl").write_text('{"text": "skipped"}\n', encoding="utf-8")
    assert list(corpus_texts(str(tmp_path))) == ["\nfirst\n\n", "second"]
    assert corpus_files(tmp_path / "sub" / "c.jsonl") == [tmp_path / "sub" / "c.jsonl"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(GrowlmError, match="holds no .md/.text/.txt files"):
        list(corpus_texts(str(tmp_path / "empty")))
    (tmp_path / "bad.txt").write_bytes(b"ok \xff")
    with pytest.raises(GrowlmError, match="offset 3"):
        list(corpus_texts(str(tmp_path / "bad.txt")))
    with pytest.raises(GrowlmError, match="unknown source"):
        list(corpus_texts(str(tmp_path / "missing")))


def test_source_texts_caps_each_source(tmp_path):
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        for i in range(3):
            (tmp_path / name / f"{i}.txt").write_text(f"{name}{i}" * 4, encoding="utf-8")
    names = [str(tmp_path / "x"), str(tmp_path / "y")]
    assert list(source_texts(names)) == list(itertools.chain.from_iterable(iter_documents(n) for n in names))
    assert list(source_texts(names, 10)) == ["x0x0x0x0", "x1", "y0y0y0y0", "y1"]
    assert list(source_texts(names, 8)) == ["x0x0x0x0", "y0y0y0y0"]
