"""Atomic file writes with the user's umask, canonical JSON, the one JSON reader, and the fields of a typed record in
the JSON it was read from (`known_fields`: evaluation results, compositions).

A file is written to a temp sibling (io.temporaries names it) and renamed into place, so a reader never sees half a
file; the temp file is made private, then given the mode an ordinary `open` would have. Folders are built the same
way by io.outputs.atomic_dir.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from growlm.errors import GrowlmError
from growlm.faults import crash_point
from growlm.io.temporaries import remove_stale_temporaries, temp_prefix


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; give the mode open() would
        crash_point(f"write {path.name}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, fixed indent) so equal content gives equal bytes."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


_JSON_NAMES = {dict: "a JSON object", list: "a JSON array"}


def read_json(path: str | Path, fix: str = "", expect: type[dict] | type[list] | None = None) -> Any:
    """The JSON value in `path`. A missing, unreadable or damaged file, or a value that is not an `expect` (dict:
    an object, list: an array), raises a one-line GrowlmError naming the file and what is wrong with it, then
    `fix`, how the user repairs it: "{path} is damaged (not valid JSON: ...); {fix}"."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrowlmError(_with_fix(f"{path} is missing", fix)) from None
    except OSError as err:
        raise GrowlmError(_with_fix(f"{path} cannot be read ({err.strerror or type(err).__name__})", fix)) from None
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError
        raise GrowlmError(_with_fix(f"{path} is damaged (not valid JSON: {str(err)[:80]})", fix)) from None
    if expect is not None and not isinstance(data, expect):
        raise GrowlmError(_with_fix(f"{path} is damaged (not {_JSON_NAMES[expect]})", fix))
    return data


def _with_fix(problem: str, fix: str) -> str:
    return f"{problem}; {fix}" if fix else problem


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give a folder built in a private temp folder (and everything in it) the modes the umask asks for."""
    mask = umask()
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def known_fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """The values in `data` of the dataclass `cls`'s fields; a GrowlmError for a missing required one."""
    if not isinstance(data, dict):
        raise GrowlmError(f"{where}: expected a JSON object, got {type(data).__name__}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = data[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise GrowlmError(f"{where}: missing the field {f.name!r}")
    return values
