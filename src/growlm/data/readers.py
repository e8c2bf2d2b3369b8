"""Reading one file into documents, streamed. A reader is called as `read(path, rel, stats)` and yields the
file's documents in order; undecodable bytes are counted in `stats` (textstream.ReadStats). Record files
(.jsonl, .jsonl.gz, .jsonl.zst, .parquet, .arrow) are read a line or a batch of rows at a time, so memory does
not grow with the file; a text file is one document and is read whole.

Document ids are the file's path relative to the source root, with "#k" for the k-th document of a file that
holds several (fortune entries, lines, records).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from growlm.data.clean import decode_utf8, html_text, split_fortunes, strip_pos_tags
from growlm.data.textstream import COMPRESSION, ReadStats, lines
from growlm.errors import GrowlmError

TEXT_SUFFIXES = (".txt", ".text", ".md")
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet", ".arrow")
BATCH_ROWS = 1024


class Document(NamedTuple):
    id: str
    text: str


Reader = Callable[[Path, str, ReadStats], Iterator[Document]]


def file_suffix(path: Path) -> str:
    """ ".txt", ".parquet", ... or ".jsonl.gz" for a compressed file."""
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() + suffix if suffix in COMPRESSION else suffix


def is_readable(path: Path) -> bool:
    return file_suffix(path) in TEXT_SUFFIXES + RECORD_SUFFIXES


def read_text_file(path: Path, rel: str, stats: ReadStats) -> Iterator[Document]:
    """The whole file is one document."""
    text, bad = decode_utf8(path.read_bytes())
    stats.undecodable += bad
    text = text.strip("\n")
    if text.strip():
        yield Document(rel, text)


def read_fortune_file(path: Path, rel: str, stats: ReadStats) -> Iterator[Document]:
    text, bad = decode_utf8(path.read_bytes())
    stats.undecodable += bad
    yield from (Document(f"{rel}#{k}", e) for k, e in enumerate(split_fortunes(text)))


def read_pos_tagged_file(path: Path, rel: str, stats: ReadStats) -> Iterator[Document]:
    """People's Daily: one paragraph per line (the file marks no article boundaries)."""
    for k, line in enumerate(lines(path, stats)):
        if plain := strip_pos_tags(line):
            yield Document(f"{rel}#{k}", plain)


def read_html_page(path: Path, rel: str, stats: ReadStats) -> Iterator[Document]:
    if text := html_text(path):
        yield Document(rel, text)


def _field_error(path: Path, field: str, available: list[str]) -> GrowlmError:
    return GrowlmError(
        f"{path} has no text field {field!r} (fields: {', '.join(available) or 'none'}); name the field as PATH#FIELD"
    )


def _text_value(value, path: Path, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GrowlmError(f"{path} {where}: the text field holds {type(value).__name__}, not a string")
    return value


def read_jsonl(path: Path, rel: str, field: str, stats: ReadStats) -> Iterator[Document]:
    for k, line in enumerate(lines(path, stats)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise GrowlmError(f"{path} line {k + 1} is not JSON ({err.msg}); fix or remove it") from None
        if not isinstance(record, dict) or field not in record:
            raise _field_error(path, field, list(record) if isinstance(record, dict) else [])
        value = _text_value(record[field], path, f"line {k + 1}")
        if value.strip():
            yield Document(f"{rel}#{k}", value)


def _check_field(schema: pa.Schema, path: Path, field: str) -> None:
    if field not in schema.names:
        raise _field_error(path, field, schema.names)
    kind = schema.field(field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise GrowlmError(f"{path}: field {field!r} has type {kind}, not string")


def _batch_documents(
    batches: Iterable[pa.RecordBatch], path: Path, rel: str, field: str, what: str
) -> Iterator[Document]:
    k = 0
    try:
        for batch in batches:
            for v in batch.column(field).to_pylist():
                if v and v.strip():
                    yield Document(f"{rel}#{k}", v)
                k += 1
    except pa.ArrowInvalid as err:
        raise GrowlmError(f"{path} is not a readable {what} file ({err})") from None


def read_parquet(path: Path, rel: str, field: str, stats: ReadStats) -> Iterator[Document]:
    try:
        parquet = pq.ParquetFile(path)
    except pa.ArrowInvalid as err:
        raise GrowlmError(f"{path} is not a readable Parquet file ({err})") from None
    with parquet:
        _check_field(parquet.schema_arrow, path, field)
        yield from _batch_documents(parquet.iter_batches(BATCH_ROWS, columns=[field]), path, rel, field, "Parquet")


def _ipc_reader(source: pa.NativeFile, path: Path):
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        source.seek(0)
        try:
            return pa.ipc.open_file(source)
        except pa.ArrowInvalid as err:
            raise GrowlmError(f"{path} is not an Arrow IPC file ({err})") from None


def read_arrow(path: Path, rel: str, field: str, stats: ReadStats) -> Iterator[Document]:
    """Arrow IPC, stream format (what `datasets` writes) or file format, one record batch at a time."""
    with pa.OSFile(str(path)) as source:
        reader = _ipc_reader(source, path)
        _check_field(reader.schema, path, field)
        if isinstance(reader, pa.ipc.RecordBatchFileReader):
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(reader)
        yield from _batch_documents(batches, path, rel, field, "Arrow IPC")


def record_reader(field: str) -> Reader:
    """Reader for local files, chosen by suffix; `field` names the text field of record formats."""
    by_suffix = {
        ".jsonl": read_jsonl,
        ".jsonl.gz": read_jsonl,
        ".jsonl.zst": read_jsonl,
        ".parquet": read_parquet,
        ".arrow": read_arrow,
    }

    def read(path: Path, rel: str, stats: ReadStats) -> Iterator[Document]:
        suffix = file_suffix(path)
        if suffix in TEXT_SUFFIXES:
            return read_text_file(path, rel, stats)
        if suffix in by_suffix:
            return by_suffix[suffix](path, rel, field, stats)
        raise GrowlmError(f"{path}: unsupported file type {suffix!r}; use {', '.join(TEXT_SUFFIXES + RECORD_SUFFIXES)}")

    return read


def read_file(read: Reader, path: Path, rel: str) -> tuple[list[Document], int]:
    """All of a file's documents and its number of undecodable bytes."""
    stats = ReadStats()
    docs = list(read(path, rel, stats))
    return docs, stats.undecodable
