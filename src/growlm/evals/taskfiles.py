"""Local benchmark files in Hugging Face formats (--task-file TASK=PATH): JSON lines, Parquet or Arrow.

Rows keep the dataset's own schema (cais/mmlu, allenai/ai2_arc, rajpurkar/squad and squad_v2,
Helsinki-NLP/opus-100); each task module names the fields it needs. Arrow means a file written by
`datasets` (IPC stream) or any IPC file, or a save_to_disk folder holding data-*.arrow.
Errors name the file, the line (JSON lines) or row, and the missing field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from growlm.errors import GrowlmError

Row = tuple[str, dict]  # (where it came from: "FILE:LINE" or "FILE row N", the row)


def _arrow_table(path: Path) -> pa.Table:
    with pa.OSFile(str(path), "rb") as f:
        data = f.read()
    try:
        return pa.ipc.open_stream(data).read_all()
    except pa.ArrowInvalid:
        try:
            return pa.ipc.open_file(data).read_all()
        except pa.ArrowInvalid:
            raise GrowlmError(f"{path} is not an Arrow IPC file or stream; give .jsonl, .parquet or .arrow") from None


def _table_rows(path: Path, table: pa.Table, start: int = 0) -> list[Row]:
    return [(f"{path} row {start + i + 1}", row) for i, row in enumerate(table.to_pylist())]


def _jsonl_rows(path: Path) -> list[Row]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise GrowlmError(
                    f"{path}:{number}: not valid JSON ({err.msg}); the file must hold one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise GrowlmError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append((f"{path}:{number}", row))
    return rows


def read_rows(path: str | Path) -> list[Row]:
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.arrow"))
        if not files:
            raise GrowlmError(f"{path} is a folder without *.arrow files; give a .jsonl, .parquet or .arrow file")
        return [row for f in files for row in _table_rows(f, _arrow_table(f))]
    if not path.is_file():
        raise GrowlmError(f"task file {path} does not exist")
    if path.suffix in (".jsonl", ".json"):
        return _jsonl_rows(path)
    if path.suffix == ".parquet":
        return _table_rows(path, pq.read_table(path))
    if path.suffix == ".arrow":
        return _table_rows(path, _arrow_table(path))
    raise GrowlmError(f"task file {path}: unknown format {path.suffix!r}; use .jsonl, .parquet or .arrow")


def get(row: Row, name: str, kind: type | tuple[type, ...]) -> Any:
    """row[name] (dots walk into nested objects), checked to be of `kind`."""
    where, value = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise GrowlmError(f"{where}: missing field {name!r}")
        value = value[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # bool is an int
        raise GrowlmError(
            f"{where}: field {name!r} holds {type(value).__name__}, expected {' or '.join(k.__name__ for k in kinds)}"
        )
    return value


def text_list(row: Row, name: str) -> list[str]:
    values = get(row, name, list)
    if not values or not all(isinstance(v, str) for v in values):
        raise GrowlmError(f"{row[0]}: field {name!r} must be a non-empty list of strings")
    return values
