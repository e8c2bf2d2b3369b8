"""Reading tokenizer-mining text from local files, folders and named data sources."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from growlm.errors import GrowlmError

TEXT_SUFFIXES = {".txt", ".text", ".md"}


def corpus_files(source: str | Path) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise GrowlmError(f"corpus folder {path} holds no {'/'.join(sorted(TEXT_SUFFIXES))} files")
        return files
    raise GrowlmError(f"corpus {source} not found: give a text file, a folder of .txt files or a named data source")


def read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise GrowlmError(f"{path} is not UTF-8 (bad byte at offset {err.start}); convert it, e.g. with iconv") from None


def iter_corpus_texts(source: str | Path) -> Iterator[str]:
    for path in corpus_files(source):
        yield read_utf8(path)


def corpus_texts(source: str) -> Iterator[str]:
    """Texts of a corpus argument: a file or folder path, else the name of a data source (growlm data list)."""
    if Path(source).exists():
        yield from iter_corpus_texts(source)
        return
    from growlm.data.sources import iter_documents

    yield from iter_documents(source)
