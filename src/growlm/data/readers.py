"""Reading one file into documents. Each reader returns (documents, number of undecodable bytes).

Document ids are the file's path relative to the source root, with "#k" for the k-th document of a file that
holds several (fortune entries, lines, records).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from growlm.data.clean import decode_utf8, html_text, split_fortunes, strip_pos_tags
from growlm.errors import GrowlmError

TEXT_SUFFIXES = (".txt", ".text", ".md")
RECORD_SUFFIXES = (".jsonl", ".parquet", ".arrow")


class Document(NamedTuple):
    id: str
    text: str


Read = tuple[list[Document], int]
Reader = Callable[[Path, str], Read]


def read_text_file(path: Path, rel: str) -> Read:
    """The whole file is one document."""
    text, bad = decode_utf8(path.read_bytes())
    text = text.strip("\n")
    return ([Document(rel, text)] if text.strip() else []), bad


def read_fortune_file(path: Path, rel: str) -> Read:
    text, bad = decode_utf8(path.read_bytes())
    return [Document(f"{rel}#{k}", e) for k, e in enumerate(split_fortunes(text))], bad


def read_pos_tagged_file(path: Path, rel: str) -> Read:
    """People's Daily: one paragraph per line (the file marks no article boundaries)."""
    text, bad = decode_utf8(path.read_bytes())
    docs = []
    for k, line in enumerate(text.splitlines()):
        if plain := strip_pos_tags(line):
            docs.append(Document(f"{rel}#{k}", plain))
    return docs, bad


def read_html_page(path: Path, rel: str) -> Read:
    text = html_text(path)
    return ([Document(rel, text)] if text else []), 0


def _field_error(path: Path, field: str, available: list[str]) -> GrowlmError:
    return GrowlmError(f"{path} has no text field {field!r} (fields: {', '.join(available) or 'none'}); "
                       f"name the field as PATH#FIELD")


def _text_value(value, path: Path, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GrowlmError(f"{path} {where}: the text field holds {type(value).__name__}, not a string")
    return value


def read_jsonl(path: Path, rel: str, field: str) -> Read:
    text, bad = decode_utf8(path.read_bytes())
    docs = []
    for k, line in enumerate(text.splitlines()):
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
            docs.append(Document(f"{rel}#{k}", value))
    return docs, bad


def _table_documents(table: pa.Table, path: Path, rel: str, field: str) -> Read:
    if field not in table.column_names:
        raise _field_error(path, field, table.column_names)
    column = table.column(field)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise GrowlmError(f"{path}: field {field!r} has type {column.type}, not string")
    return [Document(f"{rel}#{k}", v) for k, v in enumerate(column.to_pylist()) if v and v.strip()], 0


def read_parquet(path: Path, rel: str, field: str) -> Read:
    try:
        schema = pq.read_schema(path)
        if field not in schema.names:
            raise _field_error(path, field, schema.names)
        table = pq.read_table(path, columns=[field])
    except pa.ArrowInvalid as err:
        raise GrowlmError(f"{path} is not a readable Parquet file ({err})") from None
    return _table_documents(table, path, rel, field)


def read_arrow(path: Path, rel: str, field: str) -> Read:
    """Arrow IPC, stream format (what `datasets` writes) or file format."""
    with pa.memory_map(str(path)) as source:
        try:
            table = pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            try:
                table = pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid as err:
                raise GrowlmError(f"{path} is not an Arrow IPC file ({err})") from None
    return _table_documents(table, path, rel, field)


def record_reader(field: str) -> Reader:
    """Reader for local files, chosen by suffix; `field` names the text field of record formats."""
    by_suffix = {".jsonl": read_jsonl, ".parquet": read_parquet, ".arrow": read_arrow}

    def read(path: Path, rel: str) -> Read:
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            return read_text_file(path, rel)
        if suffix in by_suffix:
            return by_suffix[suffix](path, rel, field)
        raise GrowlmError(f"{path}: unsupported file type {suffix!r}; use {', '.join(TEXT_SUFFIXES + RECORD_SUFFIXES)}")

    return read
