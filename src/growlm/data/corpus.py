"""Text for tokenizer mining. `corpus_texts` serves `growlm tokenizer build|report --corpus`: local files and
folders read as they are (strict UTF-8), else the cleaned documents of a named data source. `source_texts` serves
a run that mines its tokenizer from its data sources: the cleaned documents of each source, capped per source."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from growlm.data.readers import TEXT_SUFFIXES
from growlm.data.sources import iter_documents
from growlm.errors import GrowlmError


def corpus_files(source: str | Path) -> list[Path]:
    """The file itself, or the text files (TEXT_SUFFIXES) below a folder, sorted."""
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
        raise GrowlmError(
            f"{path} is not UTF-8 (bad byte at offset {err.start}); convert it, e.g. with iconv"
        ) from None


def corpus_texts(source: str) -> Iterator[str]:
    """Texts of a corpus argument: a file or folder path, else the name of a data source (growlm data list)."""
    if Path(source).exists():
        yield from (read_utf8(path) for path in corpus_files(source))
        return
    yield from iter_documents(source)


def source_texts(names: Iterable[str], max_chars: int | None = None) -> Iterator[str]:
    """Cleaned documents of each source (named or local, as `prepare` reads them), at most `max_chars` characters
    per source when given, the last document cut at the cap."""
    for name in names:
        total = 0
        for doc in iter_documents(name):
            if max_chars is not None and total >= max_chars:
                break
            yield doc if max_chars is None else doc[: max_chars - total]
            total += len(doc)
